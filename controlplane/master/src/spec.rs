//! Service definitions: the TOML an operator writes (`mcctl deploy FILE`),
//! the same shape as JSON in the master's store and REST body, and the wire
//! `ServiceSpec` the master sends to an agent.
//!
//! Invariants of a [`ServiceDef`] that passed [`ServiceDef::validate`]:
//! names are DNS labels, unique within their parent; images are pinned (a
//! tag other than `latest`, or a digest); volumes are
//! `host:container[:ro|rw]` with a relative host path without `..` or one
//! under `/srv/<service>` (the agent confines them again); at most one
//! health probe; a snapshot schedule of whole seconds from 1 s to 30 days,
//! keeping at most 1000; sizes bounded. Every error names the field.

use std::collections::BTreeMap;

use mc_kit::api::Invalid;
use mc_proto::deploy::v1 as pb;
use serde::{Deserialize, Serialize};

const MAX_COMPONENTS: usize = 16;
const MAX_ROUTES: usize = 16;
const MAX_ENV: usize = 128;
const MAX_VOLUMES: usize = 32;
const MAX_ARGS: usize = 64;
const MAX_STRING: usize = 4096;
/// Largest definition file read.
pub const MAX_FILE: usize = 256 * 1024;
const MAX_HEALTH_SECONDS: u32 = 600;

/// A service as the operator defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub name: String,
    /// Pinned node; empty: placement decides.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    pub components: Vec<ComponentDef>,
    /// Scheduled snapshots (`[snapshots] every = "6h", keep = 7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotsDef>,
}

/// A snapshot schedule: one every `every`, the newest `keep` kept (0: the
/// master's `snapshots_keep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsDef {
    pub every: mc_kit::config::Duration,
    #[serde(default)]
    pub keep: u32,
}

/// The longest snapshot interval: 30 days.
const MAX_EVERY_SECONDS: u64 = 30 * 86_400;
const MAX_KEEP: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDef {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    pub name: String,
    /// The container's port; 0: it listens on `$PORT`.
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub mode: Mode,
    /// Empty: `<service>.<zone>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    L4,
    L7,
}

/// One probe: `http = "/path"`, `tcp = true` or `grpc = "service"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// Seconds; 0: the agent's default.
    #[serde(default)]
    pub timeout: u32,
}

/// Why a definition file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Syntax(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// `[a-z0-9-]{1,63}`, not starting or ending with `-` (the agent checks
/// names by the same rule).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// At most 4096 bytes, no NUL.
pub fn bounded(field: &str, s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_STRING || s.contains('\0') {
        return Err(Invalid::new(
            field,
            "too long or contains a NUL (at most 4096 bytes)",
        ));
    }
    Ok(())
}

fn at_most(field: &str, len: usize, max: usize) -> Result<(), Invalid> {
    if len > max {
        return Err(Invalid::new(field, format!("at most {max} entries")));
    }
    Ok(())
}

/// A pinned image reference: a digest, or a tag that is not `latest`.
pub fn check_image(field: &str, image: &str) -> Result<(), Invalid> {
    bounded(field, image)?;
    if image.is_empty() || image.starts_with('-') || image.chars().any(char::is_whitespace) {
        return Err(Invalid::new(field, "must be an image reference"));
    }
    if image.contains("@sha256:") {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) => Err(Invalid::new(
            field,
            "`latest` is not a version: pin a tag or a digest",
        )),
        Some((_, tag)) if !tag.is_empty() => Ok(()),
        _ => Err(Invalid::new(
            field,
            "must be pinned by tag (name:1.2.3) or digest (name@sha256:…)",
        )),
    }
}

fn check_volume(field: &str, v: &str, service: &str) -> Result<(), Invalid> {
    bounded(field, v)?;
    let parts: Vec<&str> = v.split(':').collect();
    let ok_opts = match parts.get(2) {
        None => true,
        Some(o) => ["ro", "rw"].contains(o),
    };
    let (Some(host), Some(container)) = (parts.first(), parts.get(1)) else {
        return Err(Invalid::new(field, "must be host_path:container_path[:ro]"));
    };
    if parts.len() > 3 || !ok_opts || host.is_empty() || !container.starts_with('/') {
        return Err(Invalid::new(
            field,
            "must be host_path:container_path[:ro|rw] with an absolute container path",
        ));
    }
    let srv = format!("/srv/{service}/");
    if host.starts_with('/') && !host.starts_with(&srv) {
        return Err(Invalid::new(
            field,
            format!("host path must lie under {srv}"),
        ));
    }
    if host.split('/').any(|p| p == "..") {
        return Err(Invalid::new(field, "host path must not contain `..`"));
    }
    Ok(())
}

fn check_hostname(field: &str, h: &str) -> Result<(), Invalid> {
    if h.is_empty() {
        return Ok(());
    }
    let labels_ok = h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !labels_ok {
        return Err(Invalid::new(field, "must be a lower-case DNS name"));
    }
    Ok(())
}

impl HealthDef {
    fn validate(&self, field: &str) -> Result<(), Invalid> {
        let kinds = usize::from(self.http.is_some()) + usize::from(self.tcp);
        if kinds + usize::from(self.grpc.is_some()) > 1 {
            return Err(Invalid::new(field, "at most one of http, tcp, grpc"));
        }
        if let Some(p) = &self.http {
            bounded(&format!("{field}.http"), p)?;
            if !p.starts_with('/') {
                return Err(Invalid::new(format!("{field}.http"), "must start with /"));
            }
        }
        if self.timeout > MAX_HEALTH_SECONDS {
            return Err(Invalid::new(
                format!("{field}.timeout"),
                format!("at most {MAX_HEALTH_SECONDS} seconds"),
            ));
        }
        Ok(())
    }
}

impl ComponentDef {
    fn validate(&self, f: &dyn Fn(&str) -> String, service: &str) -> Result<(), Invalid> {
        check_image(&f("image"), &self.image)?;
        at_most(&f("command"), self.command.len(), MAX_ARGS)?;
        for (i, a) in self.command.iter().enumerate() {
            bounded(&f(&format!("command[{i}]")), a)?;
        }
        at_most(&f("env"), self.env.len(), MAX_ENV)?;
        for (k, v) in &self.env {
            let name_ok = !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.starts_with(|c: char| c.is_ascii_digit());
            if !name_ok {
                return Err(Invalid::new(f(&format!("env.{k}")), "not a variable name"));
            }
            bounded(&f(&format!("env.{k}")), v)?;
        }
        at_most(&f("volumes"), self.volumes.len(), MAX_VOLUMES)?;
        for (i, v) in self.volumes.iter().enumerate() {
            check_volume(&f(&format!("volumes[{i}]")), v, service)?;
        }
        at_most(&f("routes"), self.routes.len(), MAX_ROUTES)?;
        for (i, r) in self.routes.iter().enumerate() {
            let rf = |k: &str| f(&format!("routes[{i}].{k}"));
            if !is_label(&r.name) || self.routes[..i].iter().any(|x| x.name == r.name) {
                return Err(Invalid::new(rf("name"), "must be a unique [a-z0-9-]{1,63}"));
            }
            check_hostname(&rf("hostname"), &r.hostname)?;
        }
        if let Some(h) = &self.health {
            h.validate(&f("health"))?;
        }
        Ok(())
    }
}

impl ServiceDef {
    /// Parses a definition file; syntax errors carry TOML's line and column,
    /// validation errors the field.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        if text.len() > MAX_FILE {
            return Err(SpecError::Syntax(format!(
                "the file is larger than {MAX_FILE} bytes"
            )));
        }
        let def: Self = toml::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?;
        def.validate()?;
        Ok(def)
    }

    /// Checks every invariant of the module header.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_label(&self.name) {
            return Err(Invalid::new("name", "must match [a-z0-9-]{1,63}"));
        }
        if !self.node.is_empty() && !is_label(&self.node) {
            return Err(Invalid::new("node", "must match [a-z0-9-]{1,63}"));
        }
        if self.components.is_empty() || self.components.len() > MAX_COMPONENTS {
            return Err(Invalid::new("components", "must hold 1 to 16 components"));
        }
        for (i, c) in self.components.iter().enumerate() {
            let f = |k: &str| format!("components[{i}].{k}");
            if !is_label(&c.name) || self.components[..i].iter().any(|x| x.name == c.name) {
                return Err(Invalid::new(f("name"), "must be a unique [a-z0-9-]{1,63}"));
            }
            c.validate(&f, &self.name)?;
        }
        if let Some(s) = &self.snapshots {
            let every = s.every.get();
            if every.subsec_nanos() != 0 || !(1..=MAX_EVERY_SECONDS).contains(&every.as_secs()) {
                return Err(Invalid::new(
                    "snapshots.every",
                    "whole seconds from 1s to 30d",
                ));
            }
            if s.keep > MAX_KEEP {
                return Err(Invalid::new("snapshots.keep", "at most 1000"));
            }
        }
        Ok(())
    }

    /// The wire spec.
    pub fn to_proto(&self) -> pb::ServiceSpec {
        pb::ServiceSpec {
            name: self.name.clone(),
            tier: pb::Tier::Worker.into(),
            node: self.node.clone(),
            components: self.components.iter().map(ComponentDef::to_proto).collect(),
            snapshots: self.snapshots.as_ref().map(|s| pb::SnapshotSchedule {
                // In range: checked by `validate`.
                interval_seconds: u32::try_from(s.every.get().as_secs()).unwrap_or(u32::MAX),
                keep: s.keep,
            }),
        }
    }

    /// From the wire, validated.
    pub fn from_proto(s: pb::ServiceSpec) -> Result<Self, Invalid> {
        for (i, c) in s.components.iter().enumerate() {
            for (j, r) in c.routes.iter().enumerate() {
                if r.container_port > u32::from(u16::MAX) {
                    return Err(Invalid::new(
                        format!("components[{i}].routes[{j}].port"),
                        "must be 0 to 65535",
                    ));
                }
            }
        }
        let def = Self {
            name: s.name,
            node: s.node,
            components: s
                .components
                .into_iter()
                .map(ComponentDef::from_proto)
                .collect(),
            snapshots: s.snapshots.map(|s| SnapshotsDef {
                every: mc_kit::config::Duration::from_secs(u64::from(s.interval_seconds)),
                keep: s.keep,
            }),
        };
        def.validate()?;
        Ok(def)
    }

    /// How many containers it runs.
    pub(crate) fn containers(&self) -> u32 {
        u32::try_from(self.components.len()).unwrap_or(u32::MAX)
    }
}

impl ComponentDef {
    fn to_proto(&self) -> pb::Component {
        let probe = self.health.as_ref().and_then(|h| {
            if let Some(p) = &h.http {
                Some(pb::health_probe::Probe::HttpPath(p.clone()))
            } else if h.tcp {
                Some(pb::health_probe::Probe::Tcp(true))
            } else {
                h.grpc.clone().map(pb::health_probe::Probe::GrpcService)
            }
        });
        pb::Component {
            name: self.name.clone(),
            image: self.image.clone(),
            command: self.command.clone(),
            env: self.env.clone().into_iter().collect(),
            volumes: self.volumes.clone(),
            routes: self
                .routes
                .iter()
                .map(|r| pb::ServiceRoute {
                    name: r.name.clone(),
                    container_port: u32::from(r.port),
                    mode: match r.mode {
                        Mode::L4 => pb::RouteMode::L4,
                        Mode::L7 => pb::RouteMode::L7,
                    }
                    .into(),
                    hostname: r.hostname.clone(),
                    public: false,
                })
                .collect(),
            health: self.health.as_ref().map(|h| pb::HealthProbe {
                probe,
                timeout_seconds: h.timeout,
            }),
        }
    }

    fn from_proto(c: pb::Component) -> Self {
        let health = c.health.map(|h| {
            let mut d = HealthDef {
                timeout: h.timeout_seconds,
                ..HealthDef::default()
            };
            match h.probe {
                Some(pb::health_probe::Probe::HttpPath(p)) => d.http = Some(p),
                Some(pb::health_probe::Probe::Tcp(t)) => d.tcp = t,
                Some(pb::health_probe::Probe::GrpcService(s)) => d.grpc = Some(s),
                None => {}
            }
            d
        });
        Self {
            name: c.name,
            image: c.image,
            command: c.command,
            env: c.env.into_iter().collect(),
            volumes: c.volumes,
            routes: c
                .routes
                .into_iter()
                .map(|r| RouteDef {
                    name: r.name,
                    // In range: checked by `ServiceDef::from_proto`.
                    port: u16::try_from(r.container_port).unwrap_or(0),
                    mode: if r.mode == i32::from(pb::RouteMode::L7) {
                        Mode::L7
                    } else {
                        Mode::L4
                    },
                    hostname: r.hostname,
                })
                .collect(),
            health,
        }
    }
}

#[cfg(test)]
mod tests;
