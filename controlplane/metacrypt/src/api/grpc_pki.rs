//! gRPC `Pki` (mc.crypt.v1): each RPC answers `UNAVAILABLE` "sealed"
//! before it decodes anything, then decodes `json` as the REST twin
//! decodes its body (at most 64 KiB, unknown fields refused) and calls the
//! same core operation; the answer is the REST twin's JSON.

use mc_proto::crypt::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tonic::{Request, Response, Status as GrpcStatus};

use super::grpc::Services;
use super::rest_pki::PKI_BODY_LIMIT;
use crate::core::Caller;
use crate::engines::pki::model::{CaRequest, ImportRequest, IssueRequest, RevokeRequest, Role};
use crate::error::CryptError;

type Reply = Result<Response<pb::PkiJson>, GrpcStatus>;

/// The request's JSON body (`{}` when empty).
fn body<T: DeserializeOwned>(r: &pb::PkiRequest) -> Result<T, CryptError> {
    if r.json.len() > PKI_BODY_LIMIT {
        return Err(CryptError::invalid("json", "at most 64 KiB"));
    }
    let text = if r.json.trim().is_empty() {
        "{}"
    } else {
        &r.json
    };
    serde_json::from_str(text).map_err(|e| CryptError::invalid("json", e.to_string()))
}

fn reply<T: Serialize>(v: T) -> Reply {
    let json = serde_json::to_string(&v).map_err(CryptError::internal)?;
    Ok(Response::new(pb::PkiJson { json }))
}

/// The sealed check, the caller and the message.
fn open(s: &Services, r: Request<pb::PkiRequest>) -> Result<(Caller, pb::PkiRequest), CryptError> {
    s.0.require_unsealed()?;
    let c = Caller::from_grpc(&r);
    Ok((c, r.into_inner()))
}

/// Revoke's `json`: the serial is `name`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeOptions {
    #[serde(default)]
    reason: crate::engines::pki::reason::Reason,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(default)]
    after: Option<String>,
}

#[tonic::async_trait]
impl pb::pki_server::Pki for Services {
    async fn generate_root(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_root_generate(&c, &r.mount, || body::<CaRequest>(&r))?,
        )
    }

    async fn import_root(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_root_import(&c, &r.mount, || body::<ImportRequest>(&r))?,
        )
    }

    async fn list_issuers(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"issuers": self.0.pki_issuers(&c, &r.mount)?}))
    }

    async fn get_issuer(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_issuer(&c, &r.mount, &r.name)?)
    }

    async fn create_issuer(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_create_issuer(&c, &r.mount, &r.name, || body::<CaRequest>(&r))?,
        )
    }

    async fn rotate_issuer(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_rotate_issuer(&c, &r.mount, &r.name)?)
    }

    async fn list_roles(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"roles": self.0.pki_roles(&c, &r.mount)?}))
    }

    async fn get_role(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_role(&c, &r.mount, &r.name)?)
    }

    async fn put_role(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_put_role(&c, &r.mount, &r.name, || body::<Role>(&r))?,
        )
    }

    async fn delete_role(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        self.0.pki_delete_role(&c, &r.mount, &r.name)?;
        reply(json!({}))
    }

    async fn issue(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_issue(&c, &r.mount, &r.name, || body::<IssueRequest>(&r))?,
        )
    }

    async fn sign_csr(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(
            self.0
                .pki_sign(&c, &r.mount, &r.name, || body::<IssueRequest>(&r))?,
        )
    }

    async fn list_certs(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        let after = || body::<After>(&r).map(|a| a.after);
        reply(json!({"serials": self.0.pki_certs(&c, &r.mount, after)?}))
    }

    async fn get_cert(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_cert(&c, &r.mount, &r.name)?)
    }

    async fn renew(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_renew(&c, &r.mount, &r.name)?)
    }

    async fn revoke(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.pki_revoke(&c, &r.mount, || {
            let o = body::<RevokeOptions>(&r)?;
            Ok(RevokeRequest {
                serial: r.name.clone(),
                reason: o.reason,
            })
        })?)
    }

    async fn rotate_crl(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"issuers": self.0.pki_rotate_crl(&c, &r.mount)?}))
    }

    async fn tidy(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(json!({"removed": self.0.pki_tidy(&c, &r.mount)?}))
    }

    async fn acme_eab(&self, r: Request<pb::PkiRequest>) -> Reply {
        let (c, r) = open(self, r)?;
        reply(self.0.acme_eab(&c, &r.mount, &r.name, || {
            body::<crate::core::EabRequest>(&r)
        })?)
    }
}
