//! Locating and reading `endpoints.json`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The default written by `mcd dev` in the current directory.
pub(crate) const DEFAULT: &str = ".mc-dev/endpoints.json";

pub(crate) struct Endpoints {
    pub(crate) path: PathBuf,
    pub(crate) json: serde_json::Value,
}

impl Endpoints {
    /// `flag`, else `env` ($MC_ENDPOINTS), else [`DEFAULT`].
    pub(crate) fn find(flag: Option<&Path>, env: Option<OsString>) -> anyhow::Result<Self> {
        let (path, source) = match (flag, env) {
            (Some(p), _) => (p.to_owned(), "--endpoints"),
            (None, Some(e)) if !e.is_empty() => (PathBuf::from(e), "$MC_ENDPOINTS"),
            _ => (PathBuf::from(DEFAULT), "the default"),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no endpoints file at {} ({source}); start the platform with `mcd dev` or pass --endpoints FILE",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        if !json.is_object() {
            bail!("{} must hold a JSON object", path.display());
        }
        Ok(Self { path, json })
    }

    /// `<component>.admin_socket`.
    pub(crate) fn socket(&self, component: &str) -> Option<PathBuf> {
        self.json
            .get(component)?
            .get("admin_socket")?
            .as_str()
            .map(PathBuf::from)
    }

    /// Every process that names an `admin_socket`, in file order; components
    /// sharing a process (proxy and dns live in the data plane) appear once.
    pub(crate) fn admin_sockets(&self) -> Vec<(String, PathBuf)> {
        let mut seen = std::collections::HashSet::new();
        self.json
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| {
                v.get("admin_socket")
                    .and_then(|s| s.as_str())
                    .map(|s| (name.clone(), PathBuf::from(s)))
            })
            .filter(|(_, path)| seen.insert(path.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_flag_then_env_then_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"x": {"admin_socket": "/a"}}"#).expect("write");
        std::fs::write(&b, r#"{"y": {"admin_socket": "/b"}}"#).expect("write");
        let e = Endpoints::find(Some(&a), Some(b.clone().into())).expect("flag");
        assert_eq!(e.path, a);
        let e = Endpoints::find(None, Some(b.clone().into())).expect("env");
        assert_eq!(
            e.admin_sockets(),
            vec![("y".to_owned(), PathBuf::from("/b"))]
        );
    }

    #[test]
    fn missing_or_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.json");
        let err = Endpoints::find(Some(&missing), None)
            .err()
            .expect("missing");
        assert!(format!("{err:#}").contains("mcd dev"), "{err:#}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1,2]").expect("write");
        assert!(Endpoints::find(Some(&bad), None).is_err());
    }
}
