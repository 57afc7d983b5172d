//! `RelayDataPlane`: one unary call of the node's data-plane admin API
//! (`mc.proxy.v1`, `mc.dns.v1`), carried to the admin socket as encoded
//! bytes ([`mc_proto::raw::RawCodec`]): the agent decodes nothing, so
//! every data-plane RPC is relayed without code per method. The data
//! plane's status comes back as it is; a method outside that surface is
//! refused before anything is sent.

use mc_master::dataplane::{MAX_MESSAGE, relayable};
use mc_proto::raw::RawCodec;
use tonic::Status;
use tonic::codegen::http::uri::PathAndQuery;

use crate::agent::Agent;

pub(crate) async fn call(agent: &Agent, method: &str, request: Vec<u8>) -> Result<Vec<u8>, Status> {
    if !relayable(method) {
        return Err(Status::invalid_argument(format!(
            "method: {method:?} is not a data-plane admin method"
        )));
    }
    if request.len() > MAX_MESSAGE {
        return Err(Status::invalid_argument("request: too large"));
    }
    let Some(socket) = agent.cfg.proxy.admin_socket.as_ref() else {
        return Err(Status::failed_precondition(
            "this node has no data plane (proxy.admin_socket is not set)",
        ));
    };
    let path = PathAndQuery::try_from(method)
        .map_err(|e| Status::invalid_argument(format!("method: {e}")))?;
    let channel = mc_shell::admin::channel(socket).await.map_err(|e| {
        Status::unavailable(format!(
            "cannot reach the data plane at {}: {e}",
            socket.display()
        ))
    })?;
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("data plane: {e}")))?;
    let r = grpc
        .unary(tonic::Request::new(request.into()), path, RawCodec)
        .await?;
    Ok(r.into_inner().to_vec())
}
