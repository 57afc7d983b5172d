//! Where `mcctl proxy|dns` send their calls. Without `--node`: the data
//! plane's local admin socket from the endpoints file (no token: the
//! socket's permissions are the access control; break-glass use on the
//! node itself). With `--node NAME`: the control plane's TLS gRPC, which
//! serves the same `mc.proxy.v1` / `mc.dns.v1` services for every node,
//! with the operator's MCIAS token and the node named in the `mc-node`
//! header; the control plane checks the caller, relays the call through
//! the node's agent and keeps every change in its audit trail (`mcctl
//! audit`). The same generated clients work on both: only the channel
//! differs.

use anyhow::Context;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;

use crate::endpoints::Endpoints;
use crate::iam::client::authed;

/// A channel to the local socket or to the control plane for one node.
pub(crate) type Channel = InterceptedService<tonic::transport::Channel, Headers>;

/// The bearer and node headers of a remote call (none on the socket).
#[derive(Clone, Default)]
pub(crate) struct Headers {
    bearer: Option<MetadataValue<Ascii>>,
    node: Option<MetadataValue<Ascii>>,
}

impl tonic::service::Interceptor for Headers {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(b) = &self.bearer {
            r.metadata_mut().insert("authorization", b.clone());
        }
        if let Some(n) = &self.node {
            r.metadata_mut()
                .insert(mc_master::dataplane::NODE_HEADER, n.clone());
        }
        Ok(r)
    }
}

/// The channel for `component` (`proxy` or `dns`): `node`'s data plane
/// through the control plane, else the local admin socket.
pub(crate) async fn channel(
    endpoints: &Endpoints,
    component: &str,
    node: Option<&str>,
) -> anyhow::Result<Channel> {
    if let Some(node) = node {
        if node.is_empty() || !node.bytes().all(|b| b.is_ascii_graphic()) {
            anyhow::bail!("--node: {node:?} is not a node name");
        }
        let (channel, bearer) = authed(endpoints).await?;
        let headers = Headers {
            bearer: Some(bearer.value()),
            node: Some(node.parse().context("--node")?),
        };
        return Ok(InterceptedService::new(channel, headers));
    }
    let socket = endpoints
        .socket(component)
        .or_else(|| endpoints.socket("dataplane"))
        .with_context(|| format!("endpoints file has no {component}.admin_socket (or use --node NAME to go through the control plane)"))?;
    let channel = mc_shell::admin::channel(&socket)
        .await
        .with_context(|| format!("cannot reach the data plane at {}", socket.display()))?;
    Ok(InterceptedService::new(channel, Headers::default()))
}
