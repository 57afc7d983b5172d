//! gRPC `SshCa` (mc.crypt.v1): each RPC answers `UNAVAILABLE` "sealed"
//! before it decodes anything, then decodes `json` as the REST twin
//! decodes its body (at most 64 KiB, unknown fields refused) and calls the
//! same core operation; the answer is the REST twin's JSON.

use mc_proto::crypt::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tonic::{Request, Response, Status as GrpcStatus};

use super::grpc::Services;
use super::rest_ssh::SSH_BODY_LIMIT;
use crate::core::Caller;
use crate::engines::ssh::model::{CaRequest, Profile, RevokeRequest, SignRequest};
use crate::error::CryptError;

type Reply = Result<Response<pb::SshJson>, GrpcStatus>;

/// The request's JSON (`{}` when empty), decoded after the policy check.
fn body<T: DeserializeOwned>(r: &pb::SshRequest) -> impl FnOnce() -> Result<T, CryptError> + '_ {
    move || {
        if r.json.len() > SSH_BODY_LIMIT {
            return Err(CryptError::invalid("json", "at most 64 KiB"));
        }
        let text = Some(r.json.trim())
            .filter(|t| !t.is_empty())
            .unwrap_or("{}");
        serde_json::from_str(text).map_err(|e| CryptError::invalid("json", e.to_string()))
    }
}

fn reply<T: Serialize>(v: T) -> Reply {
    let json = serde_json::to_string(&v).map_err(CryptError::internal)?;
    Ok(Response::new(pb::SshJson { json }))
}

/// The sealed check, the caller and the message.
fn open(s: &Services, r: Request<pb::SshRequest>) -> Result<(Caller, pb::SshRequest), CryptError> {
    s.0.require_unsealed()?;
    let c = Caller::from_grpc(&r);
    Ok((c, r.into_inner()))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(default)]
    after: Option<u64>,
}

#[tonic::async_trait]
impl pb::ssh_ca_server::SshCa for Services {
    async fn create_ca(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.ssh_create_ca(&c, &r.mount, body::<CaRequest>(&r))?)
    }

    async fn get_ca(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.ssh_ca(&c, &r.mount)?)
    }

    async fn list_profiles(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"profiles": self.0.ssh_profiles(&c, &r.mount)?}))
    }

    async fn get_profile(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.ssh_profile(&c, &r.mount, &r.name)?)
    }

    async fn put_profile(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .ssh_put_profile(&c, &r.mount, &r.name, body::<Profile>(&r))?,
        )
    }

    async fn delete_profile(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        self.0.ssh_delete_profile(&c, &r.mount, &r.name)?;
        reply(json!({}))
    }

    async fn sign(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .ssh_sign(&c, &r.mount, &r.name, body::<SignRequest>(&r))?,
        )
    }

    async fn list_issued(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        let b = body::<After>(&r);
        let serials = self.0.ssh_issued(&c, &r.mount, || b().map(|a| a.after))?;
        reply(json!({ "serials": serials }))
    }

    async fn get_issued(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.ssh_cert(&c, &r.mount, &r.name)?)
    }

    async fn tidy(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"removed": self.0.ssh_tidy(&c, &r.mount)?}))
    }

    async fn revoke(&self, r: Request<pb::SshRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.ssh_revoke(&c, &r.mount, body::<RevokeRequest>(&r))?)
    }
}
