//! Configuration: one TOML file per process, typed sections, env overrides, fail closed.
//!
//! Loading is three steps, each of which can only refuse:
//! 1. the file is parsed as TOML (syntax errors carry line and column);
//! 2. `MC_<SECTION>_<KEY>` environment variables replace or add keys, where
//!    `<SECTION>` is one of the config type's top-level sections (variables
//!    naming no known section are not ours and are ignored);
//! 3. the merged table is deserialized into the typed struct, whose types use
//!    `#[serde(deny_unknown_fields)]`, and then [`Validate`]d.
//!
//! Every error names the file and the dotted key (and the variable, when the
//! value came from the environment), so an operator can fix it without
//! reading code. Nothing starts on a config that fails any step.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "MC_";

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config {file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {file}: not valid TOML: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("config {file}: unknown key `{key}`{origin}")]
    UnknownKey {
        file: PathBuf,
        key: String,
        origin: Origin,
    },
    #[error("config {file}: missing required key `{key}`")]
    MissingKey { file: PathBuf, key: String },
    #[error("config {file}: bad value for `{key}`{origin}: {message}")]
    BadValue {
        file: PathBuf,
        key: String,
        message: String,
        origin: Origin,
    },
}

impl ConfigError {
    /// The dotted key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key, .. }
            | Self::MissingKey { key, .. }
            | Self::BadValue { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    File,
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => Ok(()),
            Self::Env(var) => write!(f, " (from environment variable {var})"),
        }
    }
}

/// A semantic check failure found after the types parsed: which key, and why.
pub use crate::api::Invalid;

/// Checks that types alone cannot express (ranges, paths that must exist,
/// combinations). Called after deserialization; the first failure refuses the config.
pub trait Validate {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// A section with no settings of its own.
impl Validate for () {}

/// Loads `path` with overrides from the process environment.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// Loads `path` with overrides from `env` (tests pass their own).
pub fn load_with_env<T: DeserializeOwned + Validate>(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(&text, path, env)
}

/// Parses config `text` (named `file` in errors) with overrides from `env`.
pub fn parse<T: DeserializeOwned + Validate>(
    text: &str,
    file: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let file = file.to_owned();
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.clone(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    let overrides = apply_env::<T>(&mut table, env);
    let origin_of = |key: &str| {
        overrides
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, var)| Origin::Env(var.clone()))
            .unwrap_or_default()
    };
    let value: T = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| classify(&file, e, &origin_of))?;
    value.validate().map_err(
        |Invalid {
             field: key,
             message,
         }| {
            let origin = origin_of(&key);
            ConfigError::BadValue {
                file,
                key,
                message,
                origin,
            }
        },
    )?;
    Ok(value)
}

/// Turns serde's message into one of our error kinds with a dotted key.
fn classify(
    file: &Path,
    err: serde_path_to_error::Error<toml::de::Error>,
    origin_of: &dyn Fn(&str) -> Origin,
) -> ConfigError {
    let path = err.path().to_string();
    let message = err.inner().message().trim().to_owned();
    let join = |leaf: &str| {
        if path == "." || path.is_empty() {
            leaf.to_owned()
        } else {
            format!("{path}.{leaf}")
        }
    };
    let file = file.to_owned();
    if let Some(field) = backticked(&message, "missing field `") {
        return ConfigError::MissingKey {
            key: join(field),
            file,
        };
    }
    if let Some(field) = backticked(&message, "unknown field `") {
        // serde_path_to_error's path already ends at the unknown field.
        let key = if path.ends_with(field) {
            path.clone()
        } else {
            join(field)
        };
        let origin = origin_of(&key);
        return ConfigError::UnknownKey { file, key, origin };
    }
    let origin = origin_of(&path);
    ConfigError::BadValue {
        file,
        key: path,
        message,
        origin,
    }
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// Applies `MC_<SECTION>_<KEY>` (or `MC_<TOPLEVELKEY>`) overrides; returns
/// the dotted keys that were set and the variable that set each.
fn apply_env<T: DeserializeOwned>(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let fields = top_level_fields::<T>();
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let name = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let value = env_value(&raw);
        if fields.contains(&name.as_str()) {
            table.insert(name.clone(), value);
            applied.push((name, var));
            continue;
        }
        // Longest section name that prefixes the variable wins, so a section
        // may itself contain underscores.
        let section = fields
            .iter()
            .filter(|s| {
                name.len() > s.len() + 1
                    && name.starts_with(**s)
                    && name.as_bytes()[s.len()] == b'_'
            })
            .max_by_key(|s| s.len());
        let Some(section) = section else { continue };
        let key = name[section.len() + 1..].to_owned();
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.insert(key.clone(), value);
            applied.push((format!("{section}.{key}"), var));
        }
    }
    applied
}

/// An env value is read as a TOML value when it is one (`8443`, `true`,
/// `["a", "b"]`), otherwise as a plain string (`127.0.0.1:8443`).
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// The top-level field names of `T`, learned by asking serde which fields it
/// expects (no value is built).
fn top_level_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field probe")
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Self(&[])
        }
    }
    impl<'de> Deserializer<'de> for Probe {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Probe) {
        Ok(_) => &[],
        Err(Found(fields)) => fields,
    }
}

/// A duration written the way operators write them: `250ms`, `30s`, `5m`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` does not start with a whole number"))?;
        let per_unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "`{s}` has unknown unit `{unit}` (use ms, s, m, h or d)"
                ));
            }
        };
        let ms = n
            .checked_mul(per_unit_ms)
            .ok_or_else(|| format!("`{s}` is too long"))?;
        Ok(Self::from_millis(ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (n, unit) = match ms {
            0 => (0, "s"),
            _ if ms.is_multiple_of(86_400_000) => (ms / 86_400_000, "d"),
            _ if ms.is_multiple_of(3_600_000) => (ms / 3_600_000, "h"),
            _ if ms.is_multiple_of(60_000) => (ms / 60_000, "m"),
            _ if ms.is_multiple_of(1_000) => (ms / 1_000, "s"),
            _ => (ms, "ms"),
        };
        write!(f, "{n}{unit}")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests;
