//! gRPC (`mc.crypt.v1`) adapter: each RPC calls the [`Metacrypt`] operation
//! its REST twin calls; proto3 empty strings and zeros mean "not given".

use std::sync::Arc;

use mc_proto::crypt::v1 as pb;
use tonic::{Request, Response, Status as GrpcStatus};

use crate::core::{
    AddSlotInput, Caller, ChangePassphraseInput, InitInput, Material, Metacrypt, ReshareInput,
    SlotInfo, Status, UnsealInputBody,
};

type Reply<T> = Result<Response<T>, GrpcStatus>;

/// Every `mc.crypt.v1` service, sharing one [`Metacrypt`].
#[derive(Clone)]
pub struct Services(pub Arc<Metacrypt>);

impl Services {
    pub fn add(m: Arc<Metacrypt>, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(pb::barrier_server::BarrierServer::new(Self(m.clone())));
        routes.add_service(pb::mounts_server::MountsServer::new(Self(m.clone())));
        routes.add_service(pb::policy_server::PolicyServer::new(Self(m.clone())));
        routes.add_service(pb::audit_server::AuditServer::new(Self(m.clone())));
        routes.add_service(pb::kv_server::KvServer::new(Self(m.clone())));
        routes.add_service(pb::transit_server::TransitServer::new(Self(m.clone())));
        routes.add_service(pb::user_crypto_server::UserCryptoServer::new(Self(
            m.clone(),
        )));
        routes.add_service(pb::pki_server::PkiServer::new(Self(m.clone())));
        routes.add_service(pb::ssh_ca_server::SshCaServer::new(Self(m)));
    }
}

fn status_pb(s: Status) -> pb::BarrierStatus {
    pb::BarrierStatus {
        state: s.state.to_owned(),
        initialized: s.initialized,
        sealed: s.sealed,
        slots: s.slots.into_iter().map(str::to_owned).collect(),
        threshold: s.threshold,
        shares: s.shares,
        progress: s.progress,
    }
}

fn slot_pb(s: SlotInfo) -> pb::SlotInfo {
    pb::SlotInfo {
        id: s.id,
        kind: s.kind,
    }
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl pb::barrier_server::Barrier for Services {
    async fn status(&self, _: Request<pb::StatusRequest>) -> Reply<pb::BarrierStatus> {
        Ok(Response::new(status_pb(self.0.status()?)))
    }

    async fn init(&self, r: Request<pb::InitRequest>) -> Reply<pb::InitResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = InitInput {
            passphrase: some(r.passphrase),
            shares: (r.shares != 0).then_some(r.shares),
            threshold: (r.threshold != 0).then_some(r.threshold),
        };
        let out = self.0.init(&c, input).await?;
        Ok(Response::new(pb::InitResponse {
            status: Some(status_pb(out.status)),
            shares: out.shares,
        }))
    }

    async fn unseal(&self, r: Request<pb::UnsealRequest>) -> Reply<pb::BarrierStatus> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = UnsealInputBody {
            passphrase: some(r.passphrase),
            share: some(r.share),
            reset: r.reset,
        };
        Ok(Response::new(status_pb(self.0.unseal(&c, input).await?)))
    }

    async fn seal(&self, r: Request<pb::SealRequest>) -> Reply<pb::BarrierStatus> {
        let c = Caller::from_grpc(&r);
        Ok(Response::new(status_pb(self.0.seal(&c).await?)))
    }

    async fn list_slots(&self, _: Request<pb::ListSlotsRequest>) -> Reply<pb::SlotList> {
        let slots = self.0.list_slots()?.into_iter().map(slot_pb).collect();
        Ok(Response::new(pb::SlotList { slots }))
    }

    async fn add_slot(&self, r: Request<pb::AddSlotRequest>) -> Reply<pb::AddSlotResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let out = self
            .0
            .add_slot(
                &c,
                AddSlotInput {
                    kind: r.kind,
                    passphrase: r.passphrase,
                },
            )
            .await?;
        Ok(Response::new(pb::AddSlotResponse {
            slot: Some(slot_pb(out.slot)),
            path: out.path,
        }))
    }

    async fn change_passphrase(
        &self,
        r: Request<pb::ChangePassphraseRequest>,
    ) -> Reply<pb::SlotInfo> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = ChangePassphraseInput {
            passphrase: r.passphrase,
            shares: r.shares,
            new_passphrase: r.new_passphrase,
        };
        Ok(Response::new(slot_pb(
            self.0.change_passphrase(&c, input).await?,
        )))
    }

    async fn reshare(&self, r: Request<pb::ReshareRequest>) -> Reply<pb::ReshareResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = ReshareInput {
            passphrase: r.passphrase,
            shares: r.shares,
            new_shares: r.new_shares,
            new_threshold: r.new_threshold,
        };
        let out = self.0.reshare(&c, input).await?;
        Ok(Response::new(pb::ReshareResponse {
            slot: Some(slot_pb(out.slot)),
            shares: out.shares,
        }))
    }

    async fn remove_slot(
        &self,
        r: Request<pb::RemoveSlotRequest>,
    ) -> Reply<pb::RemoveSlotResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let material = Material {
            passphrase: r.passphrase,
            shares: r.shares,
        };
        self.0.remove_slot(&c, &r.id, material).await?;
        Ok(Response::new(pb::RemoveSlotResponse {}))
    }

    async fn rekey(&self, r: Request<pb::RekeyRequest>) -> Reply<pb::RekeyResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let material = Material {
            passphrase: r.passphrase,
            shares: r.shares,
        };
        let out = self.0.rekey(&c, material).await?;
        Ok(Response::new(pb::RekeyResponse {
            root_version: out.root_version,
            mek_version: out.mek_version,
        }))
    }

    async fn list_jobs(&self, _: Request<pb::ListJobsRequest>) -> Reply<pb::JobsResponse> {
        let v = self.0.jobs()?;
        Ok(Response::new(pb::JobsResponse {
            jobs: v
                .jobs
                .into_iter()
                .map(|j| pb::JobInfo {
                    kind: j.kind.to_owned(),
                    mount: j.mount,
                    target_version: j.target_version,
                    rows_total: j.rows_total,
                    rows_scanned: j.rows_scanned,
                    rows_resealed: j.rows_resealed,
                    started_at: j.started_at,
                    updated_at: j.updated_at,
                })
                .collect(),
            rings: v
                .rings
                .into_iter()
                .map(|r| pb::RingInfo {
                    mount: r.mount,
                    current: r.current,
                    versions: r.versions,
                })
                .collect(),
            tasks: v
                .tasks
                .into_iter()
                .map(|t| pb::TaskInfo {
                    name: t.name,
                    every_secs: t.every_secs,
                    runs: t.runs,
                    failures: t.failures,
                    last_run: t.last_run,
                    outcome: t.outcome,
                })
                .collect(),
        }))
    }

    async fn rotate_mek(&self, r: Request<pb::RotateMekRequest>) -> Reply<pb::RotateMekResponse> {
        let c = Caller::from_grpc(&r);
        Ok(Response::new(pb::RotateMekResponse {
            mek_version: self.0.rotate_mek(&c)?,
        }))
    }
}
