//! Calls to node agents: gRPC over TLS verified against `mcp.agent_ca`, at
//! the address the node registered, with the master's own token
//! (`mcp.token_file`, the `mcp-master` system account) as bearer.
//!
//! The token file is read at each call, so a rotated token is used at once
//! and a control plane can start before its token exists.

use std::time::Duration;

use mc_kit::api::{ApiError, Invalid};
use mc_proto::deploy::v1::agent_client::AgentClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::Master;
use crate::store::NodeRow;

/// Largest token file read.
const MAX_TOKEN: u64 = 16 * 1024;

/// A connected client and the bearer to send.
pub(crate) struct AgentCall {
    pub(crate) client: AgentClient<Channel>,
    pub(crate) node: String,
    token: String,
}

impl AgentCall {
    /// `msg` with the master's bearer token.
    pub(crate) fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = format!("Bearer {}", self.token).parse() {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// An agent's refusal or failure as the operator should read it.
    pub(crate) fn error(&self, s: &tonic::Status) -> ApiError {
        let m = format!("node {}: {}", self.node, s.message());
        match s.code() {
            tonic::Code::NotFound => ApiError::NotFound(m),
            tonic::Code::InvalidArgument => ApiError::Invalid(Invalid::new("spec", m)),
            tonic::Code::FailedPrecondition => ApiError::FailedPrecondition(m),
            _ => ApiError::Unavailable(m),
        }
    }
}

fn not_ready(what: &str) -> ApiError {
    ApiError::FailedPrecondition(format!("the master cannot call agents: {what}"))
}

fn read_small(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_TOKEN * 8 {
        return Err(format!("{} is too large", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A client for `node`'s agent.
pub(crate) fn connect(m: &Master, node: &NodeRow) -> Result<AgentCall, ApiError> {
    let cfg = &m.config;
    let token_file = cfg
        .token_file
        .as_ref()
        .ok_or_else(|| not_ready("mcp.token_file is not set"))?;
    let token = read_small(token_file).map_err(|e| not_ready(&e))?;
    if token.len() as u64 > MAX_TOKEN {
        return Err(not_ready("the token file is too large"));
    }
    let token = String::from_utf8_lossy(&token).trim().to_owned();
    if token.is_empty() {
        return Err(not_ready("the token file is empty"));
    }
    Ok(AgentCall {
        client: AgentClient::new(channel(m, node, cfg.call_timeout.get())?),
        node: node.name.clone(),
        token,
    })
}

/// A lazy TLS channel to `node`'s agent (verified against `mcp.agent_ca`),
/// each call limited to `timeout`.
pub(crate) fn channel(m: &Master, node: &NodeRow, timeout: Duration) -> Result<Channel, ApiError> {
    let cfg = &m.config;
    let ca_file = cfg
        .agent_ca
        .as_ref()
        .ok_or_else(|| not_ready("mcp.agent_ca is not set"))?;
    let ca = read_small(ca_file).map_err(|e| not_ready(&e))?;
    let host = node
        .address
        .rsplit_once(':')
        .map_or(node.address.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = if cfg.agent_server_name.is_empty() {
        host.to_owned()
    } else {
        cfg.agent_server_name.clone()
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name(name);
    let channel = Endpoint::from_shared(format!("https://{}", node.address))
        .map_err(|e| ApiError::Unavailable(format!("node {}: bad address: {e}", node.name)))?
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .tls_config(tls)
        .map_err(|e| not_ready(&format!("mcp.agent_ca: {e}")))?
        .connect_lazy();
    Ok(channel)
}
