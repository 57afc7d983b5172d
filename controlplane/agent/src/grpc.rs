//! `mc.deploy.v1.Agent` over gRPC: validates each request into domain
//! types, calls `apply`/`ops`, and converts back. Authorization happened
//! before (the auth layer and `methods::map`); every RPC is logged with its
//! caller.

use std::pin::Pin;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;
use tonic::{Request, Response, Status};

use crate::agent::Agent;
use crate::model::Spec;
use crate::ops::{self, Action, to_pb};
use crate::{apply, data, relay, store};

/// Most log lines a caller may ask for.
const MAX_TAIL: u32 = 10_000;

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[derive(Clone)]
pub(crate) struct AgentGrpc(pub(crate) Arc<Agent>);

fn audit<T>(r: &Request<T>, rpc: &str, service: &str) {
    let c = Caller::from_grpc(r);
    tracing::info!(caller = %c.actor(), ip = %c.ip(), rpc, service, "agent call");
}

fn action(success: bool, steps: &[store::Step]) -> Response<pb::ServiceActionResponse> {
    Response::new(pb::ServiceActionResponse {
        success,
        steps: to_pb(steps),
    })
}

impl AgentGrpc {
    async fn act(
        &self,
        r: Request<pb::ServiceActionRequest>,
        a: Action,
        rpc: &str,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let req = r.get_ref().clone();
        audit(&r, rpc, &req.service);
        let (success, steps) = ops::act(&self.0, &req.service, a).await?;
        Ok(action(success, &steps))
    }
}

#[tonic::async_trait]
impl pb::agent_server::Agent for AgentGrpc {
    async fn apply_service(
        &self,
        r: Request<pb::ApplyServiceRequest>,
    ) -> Result<Response<pb::ApplyServiceResponse>, Status> {
        let req = r.get_ref().clone();
        let spec = req
            .spec
            .ok_or_else(|| ApiError::invalid("spec", "required"))?;
        audit(&r, "ApplyService", &spec.name);
        let spec =
            Spec::from_proto(spec, &self.0.cfg.services.root, &req.zone).map_err(ApiError::from)?;
        let name = spec.name.clone();
        let out = apply::apply(&self.0, spec).await?;
        let status = match store::desired(&self.0.store, &name).map_err(ApiError::from)? {
            Some(d) => Some(ops::describe(&self.0, &d).await),
            None => None,
        };
        Ok(Response::new(pb::ApplyServiceResponse {
            success: out.success,
            steps: to_pb(&out.steps),
            status,
        }))
    }

    async fn remove_service(
        &self,
        r: Request<pb::RemoveServiceRequest>,
    ) -> Result<Response<pb::RemoveServiceResponse>, Status> {
        let req = r.get_ref().clone();
        audit(&r, "RemoveService", &req.service);
        let (success, steps) = ops::remove(&self.0, &req.service, req.purge).await?;
        Ok(Response::new(pb::RemoveServiceResponse {
            success,
            steps: to_pb(&steps),
        }))
    }

    async fn get_service_status(
        &self,
        r: Request<pb::GetServiceStatusRequest>,
    ) -> Result<Response<pb::ServiceStatus>, Status> {
        let req = r.into_inner();
        Ok(Response::new(ops::status(&self.0, &req.service).await?))
    }

    async fn list_services(
        &self,
        r: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let req = r.into_inner();
        if !req.node.is_empty() && req.node != self.0.cfg.node {
            return Ok(Response::new(pb::ListServicesResponse {
                services: Vec::new(),
            }));
        }
        Ok(Response::new(pb::ListServicesResponse {
            services: ops::list(&self.0).await?,
        }))
    }

    async fn stop_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Stop, "StopService").await
    }

    async fn start_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Start, "StartService").await
    }

    async fn restart_service(
        &self,
        r: Request<pb::ServiceActionRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        self.act(r, Action::Restart, "RestartService").await
    }

    type ServiceLogsStream = Stream<pb::LogLine>;

    async fn service_logs(
        &self,
        r: Request<pb::ServiceLogsRequest>,
    ) -> Result<Response<Self::ServiceLogsStream>, Status> {
        let req = r.into_inner();
        if req.tail > MAX_TAIL {
            return Err(ApiError::invalid("tail", "at most 10000 lines").into());
        }
        let desired = ops::known(&self.0, &req.service)?;
        let components = &desired.spec.components;
        let component = if req.component.is_empty() {
            components
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default()
        } else if components.iter().any(|c| c.name == req.component) {
            req.component
        } else {
            return Err(ApiError::NotFound(format!(
                "no component `{}` in `{}`",
                req.component, req.service
            ))
            .into());
        };
        let name = format!("{}-{component}", req.service);
        let tail = if req.tail == 0 { 100 } else { req.tail };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let agent = self.0.clone();
        tokio::spawn(async move {
            if let Err(e) = agent.podman.logs(&name, tail, req.follow, tx).await {
                tracing::warn!(container = %name, error = %e, "podman logs");
            }
        });
        let stream =
            tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |line| {
                Ok(pb::LogLine { line })
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn reconcile(
        &self,
        r: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::ReconcileResponse>, Status> {
        let req = r.get_ref().clone();
        audit(&r, "Reconcile", &req.service);
        let (success, steps) = ops::reconcile(&self.0, &req.service).await?;
        Ok(Response::new(pb::ReconcileResponse {
            success,
            steps: to_pb(&steps),
        }))
    }

    async fn health_check(
        &self,
        _r: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::NodeInfo>, Status> {
        let containers = self
            .0
            .podman
            .list("mc.service")
            .await
            .map_err(|e| ApiError::Unavailable(format!("container runtime: {e}")))?
            .len();
        Ok(Response::new(pb::NodeInfo {
            name: self.0.cfg.node.clone(),
            role: pb::NodeRole::Worker.into(),
            address: self.0.cfg.server.grpc.to_string(),
            arch: std::env::consts::ARCH.to_owned(),
            agent_version: mc_kit::version::VERSION.to_owned(),
            health: pb::NodeHealth::Healthy.into(),
            last_heartbeat_unix: 0,
            load: Some(pb::NodeLoad {
                containers: u32::try_from(containers).unwrap_or(u32::MAX),
                ..pb::NodeLoad::default()
            }),
            probe: None,
        }))
    }

    type ExportServiceDataStream = Stream<pb::DataChunk>;

    async fn export_service_data(
        &self,
        r: Request<pb::ExportServiceDataRequest>,
    ) -> Result<Response<Self::ExportServiceDataStream>, Status> {
        let req = r.get_ref().clone();
        audit(&r, "ExportServiceData", &req.service);
        let stream = data::export(&self.0, &req.service).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn import_service_data(
        &self,
        r: Request<tonic::Streaming<pb::DataChunk>>,
    ) -> Result<Response<pb::ImportServiceDataResponse>, Status> {
        audit(&r, "ImportServiceData", "(first chunk)");
        Ok(Response::new(data::import(&self.0, r.into_inner()).await?))
    }

    async fn relay_data_plane(
        &self,
        r: Request<pb::RelayDataPlaneRequest>,
    ) -> Result<Response<pb::RelayDataPlaneResponse>, Status> {
        audit(&r, "RelayDataPlane", &r.get_ref().method);
        let req = r.into_inner();
        let response = relay::call(&self.0, &req.method, req.request).await?;
        Ok(Response::new(pb::RelayDataPlaneResponse { response }))
    }
}
