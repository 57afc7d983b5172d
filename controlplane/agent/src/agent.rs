//! The agent's state and the one routine every deploy path shares:
//! launching a component's container (image, ports, volumes, run, health).
//!
//! Invariant: every operation that changes containers, routes or the store
//! holds `Agent::lock`, so port allocation and the desired/observed rows
//! never race; read-only calls (status, logs) do not take it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use mc_kit::store::Store;

use crate::config::AgentConfig;
use crate::model::{Component, Health};
use crate::podman::{Podman, RunSpec};
use crate::routes::Routes;
use crate::store::{self, Step};
use crate::{ports, probe};

/// How many times a launch picks host ports when podman finds one taken.
const PORT_ATTEMPTS: u32 = 3;
/// How podman (netavark/rootlessport) words a port another socket holds.
const PORT_IN_USE: &str = "address already in use";

pub(crate) struct Agent {
    pub(crate) store: std::sync::Arc<Store>,
    pub(crate) podman: Podman,
    pub(crate) routes: Routes,
    pub(crate) cfg: AgentConfig,
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// The agent's own MCIAS token: registry credentials for pulls.
    pub(crate) token: String,
    /// Restart observations (flapping).
    pub(crate) flaps: crate::flaps::Flaps,
}

/// A container started for a component.
#[derive(Debug, Clone)]
pub(crate) struct Launched {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) ports: BTreeMap<String, u16>,
}

/// Why a launch stopped: the failed step and its message.
pub(crate) type Failed = (&'static str, String);

impl Agent {
    pub(crate) fn service_dir(&self, service: &str) -> PathBuf {
        self.cfg.services.root.join(service)
    }

    /// `host:port` the proxy and probes reach a host port at.
    pub(crate) fn backend(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.cfg.ports.publish, port)
    }

    /// How long a component's health check may take to pass.
    pub(crate) fn health_deadline(&self, c: &Component) -> Duration {
        match c.health_timeout_secs {
            0 => self.cfg.services.health_timeout.get(),
            s => Duration::from_secs(u64::from(s)),
        }
    }

    pub(crate) fn grace(&self) -> Duration {
        self.cfg.services.stop_timeout.get()
    }

    /// The image in local storage, or pulled with the agent's credentials.
    pub(crate) async fn ensure_image(&self, image: &str) -> Result<String, String> {
        match self.podman.image_exists(image).await {
            Ok(true) => return Ok(format!("{image} present")),
            Ok(false) => {}
            Err(e) => return Err(e.to_string()),
        }
        let authfile = self
            .write_authfile(image)
            .map_err(|e| format!("authfile: {e}"))?;
        let r = self.podman.pull(image, authfile.as_deref()).await;
        if let Some(f) = &authfile {
            let _ = std::fs::remove_file(f);
        }
        r.map(|()| format!("{image} pulled"))
            .map_err(|e| e.to_string())
    }

    /// A 0600 authfile for the image's registry: the agent's account name
    /// and its MCIAS token as the password (MCR accepts tokens as passwords).
    fn write_authfile(&self, image: &str) -> std::io::Result<Option<PathBuf>> {
        let Some((registry, _)) = image.split_once('/') else {
            return Ok(None);
        };
        if self.token.is_empty() || !(registry.contains('.') || registry.contains(':')) {
            return Ok(None);
        }
        let user = token_name(&self.token).unwrap_or_else(|| format!("agent-{}", self.cfg.node));
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", self.token));
        let body = serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string();
        let dir = self.cfg.data_dir.join("agent");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("auth-{}.json", rand::random::<u64>()));
        write_private(&path, body.as_bytes())?;
        Ok(Some(path))
    }

    /// Starts `c` as container `name`: image, host ports (`reuse` first when
    /// still free), volumes, `podman run`, then the health probe. On failure
    /// after the run the container is removed again.
    pub(crate) async fn launch(
        &self,
        service: &str,
        c: &Component,
        name: &str,
        reuse: Option<&BTreeMap<String, u16>>,
        taken: &[u16],
        steps: &mut Vec<Step>,
    ) -> Result<Launched, Failed> {
        let prefix = |s: &str| format!("{}/{s}", c.name);
        let msg = self
            .ensure_image(&c.image)
            .await
            .map_err(|m| ("image", m))?;
        steps.push(ok(&prefix("image"), msg));

        let dir = self.service_dir(service);
        let mut volumes = Vec::new();
        for v in &c.volumes {
            let host = dir.join(&v.host);
            create_private_dir(&host)
                .map_err(|e| ("container", format!("volume {}: {e}", host.display())))?;
            volumes.push((host, v.container.clone(), v.read_only));
        }

        let mut held = store::held_ports(&self.store).map_err(|e| ("container", e.to_string()))?;
        held.extend_from_slice(taken);
        let mut attempt = 1;
        let (id, ports) = loop {
            let ports = self
                .host_ports(c, reuse, &held)
                .map_err(|e| ("container", e.to_string()))?;
            let spec = self.run_spec(service, c, name, &ports, &volumes);
            // A leftover of an interrupted cutover (or of the last attempt)
            // under this name goes first.
            let _ = self.podman.remove(name).await;
            match self.podman.run_container(&spec).await {
                Ok(id) => break (id, ports),
                // The range is shared with the rest of the host: a port free
                // when checked can be bound by another program before podman
                // binds it. Take others rather than fail the deploy.
                Err(e) if attempt < PORT_ATTEMPTS && e.to_string().contains(PORT_IN_USE) => {
                    tracing::warn!(container = name, attempt, error = %e, "host port taken meanwhile; choosing others");
                    held.extend(ports.values().copied());
                    attempt += 1;
                }
                Err(e) => return Err(("container", e.to_string())),
            }
        };
        let port_list: Vec<String> = ports.iter().map(|(k, v)| format!("{k}={v}")).collect();
        steps.push(ok(
            &prefix("container"),
            format!("{name} started, ports {}", port_list.join(",")),
        ));

        let launched = Launched {
            name: name.to_owned(),
            id,
            ports,
        };
        match self.health(c, &launched).await {
            Ok(m) => {
                steps.push(ok(&prefix("health"), m));
                Ok(launched)
            }
            Err(m) => {
                let _ = self.podman.remove(name).await;
                Err(("health", m))
            }
        }
    }

    /// Host ports for `c`'s routes: `reuse` first when still free and not
    /// in `held`, fresh ones from `[ports]` for the rest.
    fn host_ports(
        &self,
        c: &Component,
        reuse: Option<&BTreeMap<String, u16>>,
        held: &[u16],
    ) -> Result<BTreeMap<String, u16>, ports::Exhausted> {
        let publish = self.cfg.ports.publish;
        let mut out = BTreeMap::new();
        let mut fresh = Vec::new();
        for r in &c.routes {
            match reuse.and_then(|m| m.get(&r.name)) {
                Some(p) if !held.contains(p) && ports::is_free(publish, *p) => {
                    out.insert(r.name.clone(), *p);
                }
                _ => fresh.push(r.name.clone()),
            }
        }
        let mut busy = held.to_vec();
        busy.extend(out.values().copied());
        let got = ports::allocate(
            self.cfg.ports.first,
            self.cfg.ports.last,
            publish,
            &busy,
            fresh.len(),
        )?;
        out.extend(fresh.into_iter().zip(got));
        Ok(out)
    }

    /// What `podman run` gets for `c` as `name` on host `ports`.
    fn run_spec(
        &self,
        service: &str,
        c: &Component,
        name: &str,
        ports: &BTreeMap<String, u16>,
        volumes: &[(PathBuf, String, bool)],
    ) -> RunSpec {
        let publish = self.cfg.ports.publish;
        let mut env = c.env.clone();
        let mut published = Vec::new();
        for (i, r) in c.routes.iter().enumerate() {
            let host = ports.get(&r.name).copied().unwrap_or_default();
            let inner = if r.container_port == 0 {
                host
            } else {
                r.container_port
            };
            env.insert(r.env_name(), inner.to_string());
            if i == 0 {
                env.insert("PORT".to_owned(), inner.to_string());
            }
            published.push((publish, host, inner));
        }
        RunSpec {
            name: name.to_owned(),
            image: c.image.clone(),
            command: c.command.clone(),
            env,
            volumes: volumes.to_vec(),
            ports: published,
            labels: BTreeMap::from([
                ("mc.service".to_owned(), service.to_owned()),
                ("mc.component".to_owned(), c.name.clone()),
            ]),
        }
    }

    async fn health(&self, c: &Component, l: &Launched) -> Result<String, String> {
        let within = self.health_deadline(c);
        let first = c.routes.first().and_then(|r| l.ports.get(&r.name));
        match (&c.health, first) {
            (Health::Running, _) | (_, None) => {
                // Give a crashing entrypoint a moment to exit.
                tokio::time::sleep(Duration::from_millis(500)).await;
                match self.podman.inspect(&l.name).await {
                    Ok(Some(i)) if i.running() => Ok("running".to_owned()),
                    Ok(Some(i)) => Err(format!("container is {}", i.status)),
                    Ok(None) => Err("container vanished".to_owned()),
                    Err(e) => Err(e.to_string()),
                }
            }
            (h, Some(port)) => {
                let addr = self.backend(*port);
                probe::until(h, addr, within)
                    .await
                    .map(|()| format!("{addr} healthy"))
                    .map_err(|m| format!("not healthy within {} s: {m}", within.as_secs()))
            }
        }
    }
}

pub(crate) fn ok(step: &str, message: impl Into<String>) -> Step {
    Step {
        step: step.to_owned(),
        success: true,
        message: message.into(),
    }
}

pub(crate) fn failed(step: &str, message: impl Into<String>) -> Step {
    Step {
        step: step.to_owned(),
        success: false,
        message: message.into(),
    }
}

/// The `name` claim of a JWT, read without verification (the agent's own
/// token, only to name the registry login).
fn token_name(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("name")?.as_str().map(str::to_owned)
}

fn create_private_dir(p: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_name_reads_the_payload_and_tolerates_garbage() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"name":"agent-rift"}"#);
        assert_eq!(
            token_name(&format!("h.{payload}.s")).as_deref(),
            Some("agent-rift")
        );
        assert_eq!(token_name("nodots"), None);
        assert_eq!(token_name("a.!!!.c"), None);
    }
}
