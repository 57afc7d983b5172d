//! `[proxy.metacrypt]`: where managed certificates are signed, and the
//! client that asks (`mc.crypt.v1.Pki/SignCsr` with a system account's token).
//!
//! Invariant: only a CSR and the token cross the wire; the token file is
//! read at each attempt, so a rotated token is used without a restart.

use std::path::PathBuf;
use std::time::Duration;

use mc_proto::crypt::v1 as pb;
use serde::Deserialize;

use super::issue::ManagedSpec;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest token file read.
const MAX_TOKEN: u64 = 16 * 1024;

/// The control plane that signs managed certificates.
///
/// ```toml
/// [proxy.metacrypt]
/// grpc = "https://cp.internal:8443"   # the control plane's gRPC address
/// ca_cert = "/srv/mc/ca.pem"          # its TLS certificate's CA
/// server_name = ""                    # default: the URL's host
/// token_file = "/srv/mc/proxy.token"  # an MCIAS system account's token
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetacryptSource {
    pub grpc: String,
    pub ca_cert: PathBuf,
    #[serde(default)]
    pub server_name: String,
    pub token_file: PathBuf,
}

/// What Metacrypt answered: the leaf and its issuer's chain, PEM.
pub(super) struct Signed {
    pub(super) certificate: String,
    pub(super) ca_chain: String,
}

impl MetacryptSource {
    fn token(&self) -> Result<String, String> {
        use std::io::Read;
        let f = std::fs::File::open(&self.token_file)
            .map_err(|e| format!("token_file {}: {e}", self.token_file.display()))?;
        let mut s = String::new();
        f.take(MAX_TOKEN)
            .read_to_string(&mut s)
            .map_err(|e| format!("token_file {}: {e}", self.token_file.display()))?;
        let t = s.trim();
        if t.is_empty() {
            return Err(format!("token_file {} is empty", self.token_file.display()));
        }
        Ok(t.to_owned())
    }

    async fn channel(&self) -> Result<tonic::transport::Channel, String> {
        let ca = tokio::fs::read(&self.ca_cert)
            .await
            .map_err(|e| format!("ca_cert {}: {e}", self.ca_cert.display()))?;
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca));
        if !self.server_name.is_empty() {
            tls = tls.domain_name(self.server_name.clone());
        }
        tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .map_err(|e| format!("grpc `{}`: {e}", self.grpc))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .tls_config(tls)
            .map_err(|e| format!("ca_cert: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.grpc))
    }

    /// Has `spec`'s mount and role sign `csr_pem`.
    pub(super) async fn sign(&self, spec: &ManagedSpec, csr_pem: &str) -> Result<Signed, String> {
        let token = self.token()?;
        let mut body = serde_json::json!({ "csr": csr_pem, "alt_names": spec.dns_names });
        if let Some(cn) = spec.dns_names.first() {
            body["common_name"] = cn.as_str().into();
        }
        if spec.ttl_seconds > 0 {
            body["ttl"] = spec.ttl_seconds.into();
        }
        let mut req = tonic::Request::new(pb::PkiRequest {
            mount: spec.mount.clone(),
            name: spec.role.clone(),
            json: body.to_string(),
        });
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        req.metadata_mut().insert("authorization", bearer);
        let mut client = pb::pki_client::PkiClient::new(self.channel().await?);
        let answer = client
            .sign_csr(req)
            .await
            .map_err(|s| format!("Metacrypt refused: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        #[derive(Deserialize)]
        struct Answer {
            certificate: String,
            #[serde(default)]
            ca_chain: String,
        }
        let a: Answer = serde_json::from_str(&answer.json)
            .map_err(|e| format!("Metacrypt's answer does not parse: {e}"))?;
        Ok(Signed {
            certificate: a.certificate,
            ca_chain: a.ca_chain,
        })
    }
}
