//! Validated service specs: what `ApplyService` accepts, converted from the
//! wire types once, stored as JSON in the agent's redb, and converted back
//! for status replies.
//!
//! Invariants of a [`Spec`]: names are DNS labels; component and route names
//! are unique within their parent; images are pinned (a tag other than
//! `latest`, or a digest); every volume's host path lies inside
//! `/srv/<service>`; a route's port is 0 (the container listens on `$PORT`)
//! or 1–65535.

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path, PathBuf};

use mc_kit::api::Invalid;
use mc_proto::deploy::v1 as pb;
use serde::{Deserialize, Serialize};

/// Peer-controlled sizes.
const MAX_COMPONENTS: usize = 16;
const MAX_ROUTES: usize = 16;
const MAX_ENV: usize = 128;
const MAX_VOLUMES: usize = 32;
const MAX_ARGS: usize = 64;
/// Longest health deadline a caller may ask for.
pub(crate) const MAX_HEALTH_SECONDS: u32 = 600;

/// The definition rules the master applies too.
pub(crate) use mc_master::spec::{bounded, check_image, is_label};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Component {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) volumes: Vec<Volume>,
    pub(crate) routes: Vec<Route>,
    pub(crate) health: Health,
    pub(crate) health_timeout_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Volume {
    /// Relative to `/srv/<service>` (already checked to stay inside).
    pub(crate) host: PathBuf,
    pub(crate) container: String,
    pub(crate) read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    L4,
    L7,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Route {
    pub(crate) name: String,
    /// 0: the container listens on the allocated host port (`$PORT`).
    pub(crate) container_port: u16,
    pub(crate) mode: Mode,
    pub(crate) hostname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Health {
    /// The container is still running after start.
    Running,
    Tcp,
    Http(String),
}

impl Component {
    /// The container's name.
    pub(crate) fn container(&self, service: &str) -> String {
        format!("{service}-{}", self.name)
    }
}

impl Route {
    /// `$PORT_<NAME>`.
    pub(crate) fn env_name(&self) -> String {
        format!("PORT_{}", self.name.to_ascii_uppercase().replace('-', "_"))
    }
}

/// `host:container[:ro]`, the host path relative to (or inside)
/// `/srv/<service>`.
fn parse_volume(field: &str, v: &str, service_dir: &Path) -> Result<Volume, Invalid> {
    bounded(field, v)?;
    let mut parts = v.split(':');
    let (Some(host), Some(container)) = (parts.next(), parts.next()) else {
        return Err(Invalid::new(field, "must be host_path:container_path[:ro]"));
    };
    let read_only = match parts.next() {
        None => false,
        Some("ro") => true,
        Some("rw") => false,
        Some(_) => return Err(Invalid::new(field, "the only options are ro and rw")),
    };
    if parts.next().is_some() || !container.starts_with('/') || host.is_empty() {
        return Err(Invalid::new(
            field,
            "must be host_path:container_path[:ro] with an absolute container path",
        ));
    }
    let host = Path::new(host);
    let rel = match host.strip_prefix(service_dir) {
        Ok(rel) => rel.to_owned(),
        Err(_) if host.is_relative() => host.to_owned(),
        Err(_) => {
            return Err(Invalid::new(
                field,
                format!("host path must lie under {}", service_dir.display()),
            ));
        }
    };
    if rel
        .components()
        .any(|c| !matches!(c, PathPart::Normal(_) | PathPart::CurDir))
    {
        return Err(Invalid::new(field, "host path must not contain `..`"));
    }
    Ok(Volume {
        host: rel,
        container: container.to_owned(),
        read_only,
    })
}

impl Spec {
    /// Validates a wire spec; `srv` is the services root, `zone` the
    /// platform zone for default hostnames.
    pub(crate) fn from_proto(
        spec: pb::ServiceSpec,
        srv: &Path,
        zone: &str,
    ) -> Result<Self, Invalid> {
        if !is_label(&spec.name) {
            return Err(Invalid::new("spec.name", "must match [a-z0-9-]{1,63}"));
        }
        if spec.components.is_empty() || spec.components.len() > MAX_COMPONENTS {
            return Err(Invalid::new(
                "spec.components",
                "must hold 1 to 16 components",
            ));
        }
        let service_dir = srv.join(&spec.name);
        let mut components: Vec<Component> = Vec::new();
        for (i, c) in spec.components.into_iter().enumerate() {
            let f = |k: &str| format!("spec.components[{i}].{k}");
            if !is_label(&c.name) || components.iter().any(|x| x.name == c.name) {
                return Err(Invalid::new(f("name"), "must be a unique [a-z0-9-]{1,63}"));
            }
            // `<service>-<component>-next` must stay a valid container name.
            if spec.name.len() + c.name.len() > 120 {
                return Err(Invalid::new(
                    f("name"),
                    "service and component names are too long together",
                ));
            }
            check_image(&f("image"), &c.image)?;
            if c.command.len() > MAX_ARGS || c.env.len() > MAX_ENV || c.volumes.len() > MAX_VOLUMES
            {
                return Err(Invalid::new(
                    f("command"),
                    "too many arguments, variables or volumes",
                ));
            }
            for a in &c.command {
                bounded(&f("command"), a)?;
            }
            for (k, v) in &c.env {
                bounded(&f("env"), v)?;
                let ok = !k.is_empty()
                    && k.len() <= 128
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !k.as_bytes()[0].is_ascii_digit();
                if !ok || k == "PORT" || k.starts_with("PORT_") {
                    return Err(Invalid::new(
                        f("env"),
                        format!(
                            "`{k}` is not a variable name the agent allows (PORT* is the agent's)"
                        ),
                    ));
                }
            }
            let volumes = c
                .volumes
                .iter()
                .map(|v| parse_volume(&f("volumes"), v, &service_dir))
                .collect::<Result<Vec<_>, _>>()?;
            if c.routes.len() > MAX_ROUTES {
                return Err(Invalid::new(f("routes"), "at most 16 routes"));
            }
            let mut routes: Vec<Route> = Vec::new();
            for (j, r) in c.routes.into_iter().enumerate() {
                let rf = |k: &str| format!("spec.components[{i}].routes[{j}].{k}");
                if !is_label(&r.name) || routes.iter().any(|x| x.name == r.name) {
                    return Err(Invalid::new(rf("name"), "must be a unique [a-z0-9-]{1,63}"));
                }
                let container_port = u16::try_from(r.container_port)
                    .map_err(|_| Invalid::new(rf("container_port"), "must be 0 to 65535"))?;
                let mode = match pb::RouteMode::try_from(r.mode) {
                    Ok(pb::RouteMode::L7) => Mode::L7,
                    Ok(_) => Mode::L4,
                    Err(_) => return Err(Invalid::new(rf("mode"), "unknown route mode")),
                };
                let hostname = if r.hostname.is_empty() {
                    if zone.is_empty() {
                        return Err(Invalid::new(
                            rf("hostname"),
                            "required when no zone is given",
                        ));
                    }
                    format!("{}.{zone}", spec.name)
                } else {
                    r.hostname.to_ascii_lowercase()
                };
                bounded(&rf("hostname"), &hostname)?;
                routes.push(Route {
                    name: r.name,
                    container_port,
                    mode,
                    hostname,
                });
            }
            let probe = c.health.unwrap_or_default();
            let health = match probe.probe {
                Some(pb::health_probe::Probe::HttpPath(p)) if p.starts_with('/') => {
                    bounded(&f("health.http_path"), &p)?;
                    if p.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                        return Err(Invalid::new(f("health.http_path"), "must be a plain path"));
                    }
                    Health::Http(p)
                }
                Some(pb::health_probe::Probe::HttpPath(_)) => {
                    return Err(Invalid::new(f("health.http_path"), "must start with /"));
                }
                Some(pb::health_probe::Probe::Tcp(true)) => Health::Tcp,
                Some(pb::health_probe::Probe::GrpcService(_)) => {
                    return Err(Invalid::new(
                        f("health.grpc_service"),
                        "gRPC health probes are not built; use http_path or tcp",
                    ));
                }
                Some(pb::health_probe::Probe::Tcp(false)) | None => Health::Running,
            };
            if !matches!(health, Health::Running) && routes.is_empty() {
                return Err(Invalid::new(
                    f("health"),
                    "a tcp or http probe needs a route to probe",
                ));
            }
            if probe.timeout_seconds > MAX_HEALTH_SECONDS {
                return Err(Invalid::new(f("health.timeout_seconds"), "at most 600"));
            }
            components.push(Component {
                name: c.name,
                image: c.image,
                command: c.command,
                env: c.env.into_iter().collect(),
                volumes,
                routes,
                health,
                health_timeout_secs: probe.timeout_seconds,
            });
        }
        Ok(Self {
            name: spec.name,
            components,
        })
    }

    pub(crate) fn to_proto(&self) -> pb::ServiceSpec {
        pb::ServiceSpec {
            name: self.name.clone(),
            tier: pb::Tier::Worker.into(),
            node: String::new(),
            // The master's schedule; the agent does not keep it.
            snapshots: None,
            components: self
                .components
                .iter()
                .map(|c| pb::Component {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    command: c.command.clone(),
                    env: c.env.clone().into_iter().collect(),
                    volumes: c
                        .volumes
                        .iter()
                        .map(|v| {
                            let ro = if v.read_only { ":ro" } else { "" };
                            format!("{}:{}{ro}", v.host.display(), v.container)
                        })
                        .collect(),
                    routes: c
                        .routes
                        .iter()
                        .map(|r| pb::ServiceRoute {
                            name: r.name.clone(),
                            container_port: u32::from(r.container_port),
                            mode: match r.mode {
                                Mode::L4 => pb::RouteMode::L4,
                                Mode::L7 => pb::RouteMode::L7,
                            }
                            .into(),
                            hostname: r.hostname.clone(),
                            public: false,
                        })
                        .collect(),
                    health: Some(pb::HealthProbe {
                        probe: match &c.health {
                            Health::Running => None,
                            Health::Tcp => Some(pb::health_probe::Probe::Tcp(true)),
                            Health::Http(p) => Some(pb::health_probe::Probe::HttpPath(p.clone())),
                        },
                        timeout_seconds: c.health_timeout_secs,
                    }),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
