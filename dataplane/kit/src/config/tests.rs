use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    server: Server,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    rate_limit: RateLimit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    listen: SocketAddr,
    #[serde(default = "default_workers")]
    workers: u16,
    #[serde(default)]
    idle_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimit {
    #[serde(default)]
    per_ip: u32,
}

fn default_workers() -> u16 {
    1
}

impl Validate for Sample {
    fn validate(&self) -> Result<(), Invalid> {
        if self.server.workers == 0 {
            return Err(Invalid::new("server.workers", "must be at least 1"));
        }
        Ok(())
    }
}

const FILE: &str = "/etc/mc/sample.toml";

fn load(text: &str, env: &[(&str, &str)]) -> Result<Sample, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    parse(text, Path::new(FILE), env)
}

#[test]
fn good_config_loads() {
    let c = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\nidle_timeout = \"2m\"\n",
        &[],
    )
    .expect("loads");
    assert_eq!(c.server.listen.port(), 8443);
    assert_eq!(c.server.workers, 1);
    assert_eq!(c.server.idle_timeout, Some(Duration::from_secs(120)));
}

#[test]
fn unknown_key_is_refused_by_name_and_file() {
    let err = load("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("server.lisen"));
    let text = err.to_string();
    assert!(
        text.contains("server.lisen") && text.contains(FILE),
        "{text}"
    );
}

#[test]
fn unknown_section_is_refused() {
    let err = load("[server]\nlisten = \"127.0.0.1:1\"\n[bogus]\nx = 1\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("bogus"));
}

#[test]
fn missing_required_key_is_refused_by_name() {
    let err = load("[server]\nworkers = 2\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::MissingKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("server.listen"));
    assert!(err.to_string().contains(FILE));
}

#[test]
fn missing_required_section_is_refused_by_name() {
    let err = load("log_level = \"info\"\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::MissingKey { .. }), "{err:?}");
    assert_eq!(err.key(), Some("server"));
}

#[test]
fn bad_value_is_refused_by_name() {
    let err = load("[server]\nlisten = \"not an address\"\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::BadValue { .. }), "{err:?}");
    assert_eq!(err.key(), Some("server.listen"));

    let err = load(
        "[server]\nlisten = \"127.0.0.1:1\"\nidle_timeout = \"5 parsecs\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("server.idle_timeout"));
    assert!(err.to_string().contains("unit"), "{err}");
}

#[test]
fn validation_failure_names_the_key() {
    let err = load("[server]\nlisten = \"127.0.0.1:1\"\nworkers = 0\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::BadValue { .. }), "{err:?}");
    assert_eq!(err.key(), Some("server.workers"));
    assert!(err.to_string().contains("at least 1"));
}

#[test]
fn syntax_error_is_refused() {
    let err = load("[server\nlisten = 1", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
}

#[test]
fn env_override_beats_file() {
    let c = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\nworkers = 2\n",
        &[
            ("MC_SERVER_LISTEN", "127.0.0.1:9999"),
            ("MC_SERVER_WORKERS", "4"),
        ],
    )
    .expect("loads");
    assert_eq!(c.server.listen.port(), 9999);
    assert_eq!(c.server.workers, 4);
}

#[test]
fn env_supplies_missing_keys_and_underscored_names() {
    let c = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\n",
        &[("MC_RATE_LIMIT_PER_IP", "20"), ("MC_LOG_LEVEL", "debug")],
    )
    .expect("loads");
    assert_eq!(c.rate_limit.per_ip, 20);
    assert_eq!(c.log_level.as_deref(), Some("debug"));
}

#[test]
fn env_bad_value_names_the_variable() {
    let err = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\n",
        &[("MC_SERVER_WORKERS", "many")],
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("server.workers"));
    assert!(err.to_string().contains("MC_SERVER_WORKERS"), "{err}");
}

#[test]
fn env_unknown_key_in_known_section_is_refused() {
    let err = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\n",
        &[("MC_SERVER_LISTN", "x")],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert!(err.to_string().contains("MC_SERVER_LISTN"), "{err}");
}

#[test]
fn env_for_other_programs_is_ignored() {
    let c = load(
        "[server]\nlisten = \"127.0.0.1:8443\"\n",
        &[("MC_ENDPOINTS", "/tmp/e.json"), ("PATH", "/bin")],
    );
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn durations_parse_and_print() {
    for (text, ms) in [
        ("250ms", 250),
        ("30s", 30_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
    ] {
        let d: Duration = text.parse().expect(text);
        assert_eq!(d.get().as_millis(), ms);
        assert_eq!(d.to_string(), text);
    }
    for bad in ["", "s", "10", "10x", "-1s", "99999999999999999999d"] {
        assert!(bad.parse::<Duration>().is_err(), "{bad}");
    }
}
