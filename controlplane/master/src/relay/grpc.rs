//! `mc.proxy.v1.ProxyAdmin` and `mc.dns.v1.DnsAdmin` on the control plane's
//! gRPC listener: one tonic service per name, each method served by the
//! same generic handler with the raw codec (the request body is relayed as
//! it is). The node comes from the `mc-node` request header. The auth
//! layer ran before (the paths are in `methods::map`).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mc_proto::raw::RawCodec;
use mc_service::caller::Caller;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, http};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::{Call, relay};
use crate::Master;
use crate::dataplane::{MAX_MESSAGE, NODE_HEADER};

/// Which relayed service a [`RelayGrpc`] answers as.
pub(crate) trait Surface: Send + Sync + 'static {
    const NAME: &'static str;
}

pub(crate) struct Proxy;
impl Surface for Proxy {
    const NAME: &'static str = "mc.proxy.v1.ProxyAdmin";
}

pub(crate) struct Dns;
impl Surface for Dns {
    const NAME: &'static str = "mc.dns.v1.DnsAdmin";
}

pub(crate) struct RelayGrpc<S>(Arc<Master>, PhantomData<S>);

impl<S> RelayGrpc<S> {
    pub(crate) fn new(m: Arc<Master>) -> Self {
        Self(m, PhantomData)
    }
}

impl<S> Clone for RelayGrpc<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<S: Surface> NamedService for RelayGrpc<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S: Surface> Service<http::Request<Body>> for RelayGrpc<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFut<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let one = One {
            m: self.0.clone(),
            method: req.uri().path().to_owned(),
        };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(MAX_MESSAGE), Some(MAX_MESSAGE));
            Ok(grpc.unary(one, req).await)
        })
    }
}

/// One call of `method`.
struct One {
    m: Arc<Master>,
    method: String,
}

impl UnaryService<Bytes> for One {
    type Response = Bytes;
    type Future = BoxFut<Result<Response<Bytes>, Status>>;

    fn call(&mut self, r: Request<Bytes>) -> Self::Future {
        let m = self.m.clone();
        let method = std::mem::take(&mut self.method);
        Box::pin(async move {
            let caller = Caller::from_grpc(&r);
            let node = r
                .metadata()
                .get(NODE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let call = Call {
                node: &node,
                method: &method,
                request: r.into_inner().to_vec(),
            };
            relay(&m, &caller, call)
                .await
                .map(|b| Response::new(Bytes::from(b)))
        })
    }
}
