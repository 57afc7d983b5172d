//! `mc.deploy.v1.Master` over gRPC: each RPC is one call into `registry`,
//! `deploy`, `snapshots` or `migrate`, the same its REST twin makes. Authorization happened before
//! (the control plane's auth layer and `methods::map`).

use std::pin::Pin;
use std::sync::Arc;

use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;
use tonic::{Request, Response, Status};

use crate::Master;
use crate::deploy::{self, Action};
use crate::{migrate, registry, snapshots, sync};

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[derive(Clone)]
pub(crate) struct MasterGrpc(pub(crate) Arc<Master>);

fn ok<T>(r: Result<T, mc_kit::api::ApiError>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

impl MasterGrpc {
    async fn act(
        &self,
        r: Request<pb::ServiceActionRequest>,
        a: Action,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(deploy::act(&self.0, &c, &r.into_inner().service, a).await)
    }
}

#[tonic::async_trait]
impl pb::master_server::Master for MasterGrpc {
    async fn deploy(
        &self,
        r: Request<pb::DeployRequest>,
    ) -> Result<Response<pb::DeployResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(deploy::deploy(&self.0, &c, r.into_inner()).await)
    }

    async fn undeploy(
        &self,
        r: Request<pb::UndeployRequest>,
    ) -> Result<Response<pb::UndeployResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(deploy::undeploy(&self.0, &c, r.into_inner()).await)
    }

    async fn get_service_status(
        &self,
        r: Request<pb::GetServiceStatusRequest>,
    ) -> Result<Response<pb::ServiceStatus>, Status> {
        ok(deploy::status(&self.0, &r.into_inner().service).await)
    }

    async fn list_services(
        &self,
        r: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        ok(deploy::list(&self.0, &r.into_inner().node).await)
    }

    async fn list_nodes(
        &self,
        _: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        ok(registry::list(&self.0))
    }

    async fn stop_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Stop).await
    }

    async fn start_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Start).await
    }

    async fn restart_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Restart).await
    }

    type ServiceLogsStream = Stream<pb::LogLine>;

    async fn service_logs(
        &self,
        r: Request<pb::ServiceLogsRequest>,
    ) -> Result<Response<Self::ServiceLogsStream>, Status> {
        let stream = deploy::logs(&self.0, r.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create_snapshot(
        &self,
        r: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        let c = Caller::from_grpc(&r);
        ok(snapshots::create(&self.0, &c, &r.into_inner().service).await)
    }

    async fn list_snapshots(
        &self,
        r: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        ok(snapshots::list(&self.0, &r.into_inner().service))
    }

    async fn restore_snapshot(
        &self,
        r: Request<pb::RestoreSnapshotRequest>,
    ) -> Result<Response<pb::RestoreSnapshotResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(snapshots::restore(&self.0, &c, r.into_inner()).await)
    }

    async fn migrate_service(
        &self,
        r: Request<pb::MigrateServiceRequest>,
    ) -> Result<Response<pb::MigrateServiceResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(migrate::migrate(&self.0, &c, r.into_inner()).await)
    }

    async fn register_node(
        &self,
        r: Request<pb::RegisterNodeRequest>,
    ) -> Result<Response<pb::RegisterNodeResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(registry::register(&self.0, &c, r.into_inner()).await)
    }

    async fn heartbeat(
        &self,
        r: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(registry::heartbeat(&self.0, &c, r.into_inner()).await)
    }

    async fn sync(
        &self,
        r: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        let c = Caller::from_grpc(&r);
        ok(sync::sync(&self.0, &c, r.into_inner()).await)
    }

    async fn query_data_plane_audit(
        &self,
        r: Request<pb::QueryDataPlaneAuditRequest>,
    ) -> Result<Response<pb::QueryDataPlaneAuditResponse>, Status> {
        ok(crate::audit::query(&self.0.store, r.get_ref()))
    }
}
