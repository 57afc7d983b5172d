//! `mcctl status`: every process's version, readiness, uptime and details,
//! through each admin socket the endpoints file names.
//!
//! Invariant: the exit status is success only when every process answered ready.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use mc_proto::admin::v1::StatusRequest;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::output::{Col, Out, Table, row};

#[derive(Serialize)]
struct Row {
    component: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Row {
    fn cells(&self) -> Vec<String> {
        let details = match (&self.details, &self.error) {
            (Some(d), _) => d
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(e)) => e.clone(),
            (None, None) => String::new(),
        };
        row![
            self.component,
            self.state,
            self.version.as_deref().unwrap_or("-"),
            format!("{:>7}s", self.uptime_seconds.unwrap_or(0)),
            details
        ]
    }
}

const TABLE: Table = Table(&[
    Col::left("COMPONENT", 14),
    Col::left("STATE", 10),
    Col::left("VERSION", 28),
    Col::right("UPTIME", 8),
    Col::left("DETAILS", 0).gap(2),
]);

async fn ask(
    name: &str,
    socket: &std::path::Path,
) -> anyhow::Result<mc_proto::admin::v1::StatusResponse> {
    let mut client = mc_shell::admin::connect(socket)
        .await
        .with_context(|| format!("cannot reach {name} at {}", socket.display()))?;
    let status = client
        .status(StatusRequest {})
        .await
        .with_context(|| format!("{name} status"))?;
    Ok(status.into_inner())
}

pub(crate) fn run(endpoints: &Endpoints, out: Out) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for (name, socket) in endpoints.admin_sockets() {
        let row = match runtime.block_on(ask(&name, &socket)) {
            Ok(s) => Row {
                component: name,
                state: if s.ready { "ready" } else { "not ready" },
                version: Some(s.version),
                uptime_seconds: Some(s.uptime_seconds),
                details: Some(s.details.into_iter().collect()),
                error: None,
            },
            Err(e) => Row {
                component: name,
                state: "down",
                version: None,
                uptime_seconds: None,
                details: None,
                error: Some(format!("{e:#}")),
            },
        };
        rows.push(row);
    }
    out.show(&rows, || TABLE.print(rows.iter().map(Row::cells)))?;
    let all_ready = rows.iter().all(|r| r.state == "ready");
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
