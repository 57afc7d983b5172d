//! Liveness and readiness: `/healthz` for HTTP checkers, the standard gRPC
//! health service for gRPC ones. Readiness drops when draining starts, so a
//! load balancer stops sending new work before connections close.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// Shared readiness flag of one process.
#[derive(Clone)]
pub struct Health(Arc<Inner>);

struct Inner {
    component: &'static str,
    ready: AtomicBool,
    started: Instant,
    grpc: tonic_health::server::HealthReporter,
}

impl Health {
    /// A health state (not ready yet) and the gRPC health service to mount.
    pub fn new(
        component: &'static str,
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (grpc, service) = tonic_health::server::health_reporter();
        let health = Self(Arc::new(Inner {
            component,
            ready: AtomicBool::new(false),
            started: Instant::now(),
            grpc,
        }));
        (health, service)
    }

    /// Marks the process (and the overall gRPC service "") serving.
    pub async fn set_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
        self.0
            .grpc
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    }

    /// Marks the process draining: `/healthz` answers 503 from now on.
    pub async fn set_draining(&self) {
        self.0.ready.store(false, Ordering::Release);
        self.0
            .grpc
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }

    /// Handler for `GET /healthz`: 200 when ready, 503 otherwise, JSON either way.
    pub async fn handler(State(health): State<Self>) -> impl IntoResponse {
        let ready = health.is_ready();
        let body = serde_json::json!({
            "status": if ready { "ok" } else { "unavailable" },
            "component": health.0.component,
            "version": mc_kit::version::VERSION,
            "uptime_seconds": health.uptime_seconds(),
        });
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(body))
    }
}
