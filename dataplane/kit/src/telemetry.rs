//! Structured logs with `tracing`: human-readable for a terminal, JSON for collectors.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::config::Invalid;

/// The `[log]` section every service config carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `mc_kit=debug,info`, …
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl LogConfig {
    /// Checks the filter syntax so a typo is refused at load time, by key.
    pub fn validate(&self, key_prefix: &str) -> Result<(), Invalid> {
        EnvFilter::try_new(&self.level)
            .map(drop)
            .map_err(|e| Invalid::new(format!("{key_prefix}.level"), e.to_string()))
    }
}

/// Installs the global subscriber. Logs go to stderr; stdout stays free for
/// what a command prints for people and scripts. A second call is a no-op.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match cfg.format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
