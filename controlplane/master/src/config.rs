//! The `[mcp]` section of the control plane's TOML.
//!
//! ```toml
//! [mcp]
//! nodes = ["rift", "orion"]       # agent-<node> accounts that may register
//! token_file = "/srv/mcp/token"   # the mcp-master system account's token
//! agent_ca = "/srv/mcp/ca.pem"    # CA of the agents' TLS certificates
//! agent_server_name = ""          # TLS name to verify; "" = the address's host
//! zone = "svc.example.net"        # default hostnames: <service>.<zone>
//! heartbeat_interval = "30s"      # what agents are told; health is judged by it
//! unhealthy_after = 3             # missed intervals before a node is unhealthy
//! register_interval = "60s"       # RegisterNode at most this often per node
//! call_timeout = "120s"           # longest call to an agent (an ApplyService)
//! snapshots_keep = 5              # snapshots kept per service (oldest deleted)
//! probe_timeout = "5s"            # the probe of a node whose heartbeats stopped
//! pki_mount = "pki"               # Metacrypt pki mount and role signing L7 routes'
//! pki_role = "svc"                #   certificates on the node's proxy ("": no certificate step)
//! dns = true                      # an A/AAAA record per route hostname under `zone` in the node's MCNS
//! ```
//!
//! Invariant: without `nodes` no agent can register; every interval and
//! count is bounded and non-zero.

use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// The allowlist: node names whose `agent-<node>` accounts may register.
    pub nodes: Vec<String>,
    /// The master's own MCIAS token (system account `mcp-master`), read at
    /// each call to an agent so it can be replaced without a restart.
    pub token_file: Option<PathBuf>,
    /// PEM CA that signed the agents' certificates.
    pub agent_ca: Option<PathBuf>,
    pub agent_server_name: String,
    pub zone: String,
    pub heartbeat_interval: Duration,
    pub unhealthy_after: u32,
    pub register_interval: Duration,
    pub call_timeout: Duration,
    pub snapshots_keep: u32,
    pub probe_timeout: Duration,
    /// Metacrypt pki mount and role for the certificate step: each L7
    /// route's hostname gets a managed certificate on the node's proxy.
    /// Empty: no certificate step (a route uses a certificate already there).
    pub pki_mount: String,
    pub pki_role: String,
    /// The DNS step: each route hostname under `zone` gets a record in the
    /// node's MCNS (zone `zone`) pointing at the node's registered address.
    pub dns: bool,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            token_file: None,
            agent_ca: None,
            agent_server_name: String::new(),
            zone: "svc.local".to_owned(),
            heartbeat_interval: Duration::from_secs(30),
            unhealthy_after: 3,
            register_interval: Duration::from_secs(60),
            call_timeout: Duration::from_secs(120),
            snapshots_keep: 5,
            probe_timeout: Duration::from_secs(5),
            pki_mount: String::new(),
            pki_role: String::new(),
            dns: false,
        }
    }
}

impl Validate for McpConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (i, n) in self.nodes.iter().enumerate() {
            if !crate::spec::is_label(n) {
                return Err(Invalid::new(
                    format!("nodes[{i}]"),
                    "must match [a-z0-9-]{1,63}",
                ));
            }
        }
        for (key, p) in [
            ("token_file", &self.token_file),
            ("agent_ca", &self.agent_ca),
        ] {
            if p.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(Invalid::new(key, "must be an absolute path"));
            }
        }
        let hb = self.heartbeat_interval.get().as_secs_f64();
        if !(0.1..=3600.0).contains(&hb) {
            return Err(Invalid::new("heartbeat_interval", "between 100ms and 1h"));
        }
        if !(1..=100).contains(&self.unhealthy_after) {
            return Err(Invalid::new("unhealthy_after", "between 1 and 100"));
        }
        if self.register_interval.get().as_secs() > 3600 {
            return Err(Invalid::new("register_interval", "at most 1h"));
        }
        let call = self.call_timeout.get().as_secs();
        if !(1..=3600).contains(&call) {
            return Err(Invalid::new("call_timeout", "between 1s and 1h"));
        }
        let probe = self.probe_timeout.get().as_secs_f64();
        if !(0.1..=60.0).contains(&probe) {
            return Err(Invalid::new("probe_timeout", "between 100ms and 60s"));
        }
        if !(1..=1000).contains(&self.snapshots_keep) {
            return Err(Invalid::new("snapshots_keep", "between 1 and 1000"));
        }
        if self.pki_mount.is_empty() != self.pki_role.is_empty() {
            return Err(Invalid::new(
                if self.pki_mount.is_empty() {
                    "pki_mount"
                } else {
                    "pki_role"
                },
                "pki_mount and pki_role are set together",
            ));
        }
        for (key, v) in [("pki_mount", &self.pki_mount), ("pki_role", &self.pki_role)] {
            if !v.is_empty() && !crate::spec::is_label(v) {
                return Err(Invalid::new(key, "must match [a-z0-9-]{1,63}"));
            }
        }
        if self.zone.is_empty() || self.zone.split('.').any(|l| !crate::spec::is_label(l)) {
            return Err(Invalid::new("zone", "must be a lower-case DNS name"));
        }
        Ok(())
    }
}
