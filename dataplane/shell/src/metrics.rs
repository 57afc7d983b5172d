//! Prometheus metrics: one registry per process, HTTP request metrics for
//! every REST/gRPC surface served through [`crate::serve`], text exposition at `/metrics`:
//! OpenMetrics to a scraper that asks for it (`Accept: application/openmetrics-text`,
//! as Prometheus does), Prometheus text format 0.0.4 to everyone else.

mod text;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    component: String,
    version: String,
}

/// Collects a process's metrics before it starts serving; [`MetricsBuilder::build`] freezes them.
pub struct MetricsBuilder {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

impl MetricsBuilder {
    pub fn new(component: &str) -> Self {
        let mut registry = Registry::with_prefix("mc");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                component: component.to_owned(),
                version: mc_kit::version::VERSION.to_owned(),
            })
            .set(1);
        registry.register("build_info", "Build of this process", build);
        let start = Gauge::<i64>::default();
        if let Ok(since) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            start.set(i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
        }
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch",
            start,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP and gRPC requests by matched route, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 4.0, 10))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by matched route",
            durations.clone(),
        );
        Self {
            registry,
            requests,
            durations,
        }
    }

    /// For components to register their own metrics.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn build(self) -> Metrics {
        Metrics(Arc::new(Inner {
            registry: self.registry,
            requests: self.requests,
            durations: self.durations,
        }))
    }
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

/// The frozen registry, cheap to clone into handlers.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Axum middleware: counts and times every request by matched route.
    pub async fn track(State(metrics): State<Self>, req: Request, next: Next) -> Response {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str())
            .to_owned();
        let method = req.method().as_str().to_owned();
        let started = Instant::now();
        let response = next.run(req).await;
        metrics
            .0
            .durations
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        metrics
            .0
            .requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }

    /// Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    pub fn render_text(&self) -> String {
        text::from_openmetrics(&self.render())
    }

    /// Handler for `GET /metrics`: the format the `Accept` header asks for.
    pub async fn handler(
        State(metrics): State<Self>,
        headers: axum::http::HeaderMap,
    ) -> impl IntoResponse {
        let openmetrics = headers
            .get_all(axum::http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let (content_type, body) = if openmetrics {
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.render(),
            )
        } else {
            (
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render_text(),
            )
        };
        ([(axum::http::header::CONTENT_TYPE, content_type)], body)
    }
}
