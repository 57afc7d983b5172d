//! MCDoc's TOML config (`mcd mcdoc --config FILE`, or none: defaults and
//! flags), every key overridable as `MC_<SECTION>_<KEY>`.
//!
//! ```toml
//! [site]
//! dir = "/docs"              # the Markdown tree (a directory or a git checkout)
//! title = "Metacircular"     # shown in the header and <title>
//! poll = "2s"                # how often the tree is checked for changes
//! [server]
//! listen = "0.0.0.0:8080"    # default: 0.0.0.0:$PORT when PORT is set, else 127.0.0.1:8080
//! [log]
//! level = "info"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use mc_kit::telemetry::LogConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McdocConfig {
    #[serde(default)]
    pub site: SiteSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteSection {
    pub dir: PathBuf,
    pub title: String,
    pub poll: Duration,
}

impl Default for SiteSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("."),
            title: "Docs".to_owned(),
            poll: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// `None`: [`ServerSection::address`] decides.
    pub listen: Option<SocketAddr>,
}

impl ServerSection {
    /// `listen`, else `0.0.0.0:$PORT` (the MCP agent's allocated port) when
    /// `port` is given, else `127.0.0.1:8080`.
    pub fn address(&self, port: Option<u16>) -> SocketAddr {
        match (self.listen, port) {
            (Some(a), _) => a,
            (None, Some(p)) => SocketAddr::from(([0, 0, 0, 0], p)),
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

impl Validate for McdocConfig {
    fn validate(&self) -> Result<(), Invalid> {
        let poll = self.site.poll.get();
        if poll < std::time::Duration::from_millis(100) || poll.as_secs() > 3600 {
            return Err(Invalid::new("site.poll", "between 100ms and 1h"));
        }
        if self.site.title.is_empty() || self.site.title.len() > 200 {
            return Err(Invalid::new("site.title", "1 to 200 characters"));
        }
        if self.site.dir.as_os_str().is_empty() {
            return Err(Invalid::new("site.dir", "is required"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<McdocConfig, String> {
        mc_kit::config::parse::<McdocConfig>(
            text,
            std::path::Path::new("mcdoc.toml"),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_env_overrides_and_refusals_name_the_key() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.site.poll.get(), std::time::Duration::from_secs(2));
        assert_eq!(c.server.address(None).to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.address(Some(20001)).to_string(), "0.0.0.0:20001");
        let c = parse(
            "[site]\ndir = \"/docs\"\n",
            &[("MC_SERVER_LISTEN", "127.0.0.1:9")],
        );
        let c = c.unwrap();
        assert_eq!(c.server.address(Some(1)).to_string(), "127.0.0.1:9");
        assert_eq!(c.site.dir, PathBuf::from("/docs"));
        let e = parse("[site]\npoll = \"1ms\"\n", &[]).unwrap_err();
        assert!(e.contains("site.poll"), "{e}");
        let e = parse("[site]\nnope = 1\n", &[]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
