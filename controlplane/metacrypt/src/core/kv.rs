//! The kv engine's operations as core calls: each names its mount, its
//! policy path and capability ([`EngineOp`]) and runs through
//! [`Metacrypt::run`]. Policy paths (Vault's): `<mount>/data/<path>` read,
//! create|update (write), patch, delete (latest); `<mount>/delete|undelete|
//! destroy/<path>` update; `<mount>/metadata/<path>` read, list, create|
//! update, delete; `<mount>/config` read, update.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::run::EngineOp;
use super::{Caller, Metacrypt, MountUpdate};
use crate::engines::kv::{self as engine, KvConfig, VersionOp};
use crate::engines::{Engine, kv::Kv};
use crate::error::CryptError;
use crate::policy::Capability;

pub use crate::engines::kv::{KvList, KvMetadata, KvMetadataInput, KvRead, KvVersion};

/// `POST data/<path>`: `{data, options: {cas}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvWrite {
    pub data: Map<String, Value>,
    #[serde(default)]
    pub options: KvOptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvOptions {
    #[serde(default)]
    pub cas: Option<u64>,
}

/// `POST delete|undelete|destroy/<path>`: `{versions}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvDelete {
    pub versions: Vec<u64>,
}

/// `POST config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfigInput {
    #[serde(default)]
    pub max_versions: Option<u32>,
    #[serde(default)]
    pub cas_required: Option<bool>,
    /// Seconds (0: never).
    #[serde(default)]
    pub delete_version_after: Option<u64>,
}

/// One kv request: the mount, the sub-path, the capability.
struct Op<'a> {
    mount: &'a str,
    sub: String,
    capability: Capability,
    alternative: Option<Capability>,
}

impl EngineOp for Op<'_> {
    const ENGINE: &'static str = Kv::TYPE;
    fn mount(&self) -> &str {
        self.mount
    }
    fn access(&self) -> (String, Capability) {
        (self.sub.clone(), self.capability)
    }
    fn alternative(&self) -> Option<Capability> {
        self.alternative
    }
}

fn op<'a>(mount: &'a str, tree: &str, path: &str, capability: Capability) -> Op<'a> {
    Op {
        mount,
        sub: if path.is_empty() {
            tree.to_owned()
        } else {
            format!("{tree}/{path}")
        },
        capability,
        alternative: None,
    }
}

fn upsert<'a>(mount: &'a str, tree: &str, path: &str) -> Op<'a> {
    Op {
        alternative: Some(Capability::Update),
        ..op(mount, tree, path, Capability::Create)
    }
}

impl Metacrypt {
    pub fn kv_read(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        version: u64,
    ) -> Result<KvRead, CryptError> {
        self.run(c, &op(mount, "data", path, Capability::Read), |a| {
            engine::read(&a, path, version)
        })
    }

    pub fn kv_write(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvWrite,
    ) -> Result<KvVersion, CryptError> {
        self.run(c, &upsert(mount, "data", path), |a| {
            engine::write(&a, path, &input.data, input.options.cas)
        })
    }

    /// Only the checks of a write (`patch`: of a patch), for adapters that
    /// must decode a body after them: a caller without rights learns 403,
    /// not what is wrong with the body.
    pub fn kv_authorize_write(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        patch: bool,
    ) -> Result<(), CryptError> {
        let op = if patch {
            op(mount, "data", path, Capability::Patch)
        } else {
            upsert(mount, "data", path)
        };
        self.run(c, &op, |_| Ok(()))
    }

    /// Only the checks of a read (`list`: of a listing) under `tree`
    /// (`data`, `metadata`), for adapters that refuse a bad query after them.
    pub fn kv_authorize_read(
        &self,
        c: &Caller,
        mount: &str,
        tree: &str,
        path: &str,
        list: bool,
    ) -> Result<(), CryptError> {
        let capability = if list {
            Capability::List
        } else {
            Capability::Read
        };
        self.run(c, &op(mount, tree, path, capability), |_| Ok(()))
    }

    pub fn kv_patch(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvWrite,
    ) -> Result<KvVersion, CryptError> {
        self.run(c, &op(mount, "data", path, Capability::Patch), |a| {
            engine::patch(&a, path, &input.data, input.options.cas)
        })
    }

    /// Soft-deletes the current version (`DELETE data/<path>`).
    pub fn kv_delete_latest(&self, c: &Caller, mount: &str, path: &str) -> Result<(), CryptError> {
        self.run(c, &op(mount, "data", path, Capability::Delete), |a| {
            engine::set_versions(&a, path, VersionOp::Delete, &[], true)
        })
    }

    pub fn kv_delete_versions(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvDelete,
    ) -> Result<(), CryptError> {
        self.run(c, &op(mount, "delete", path, Capability::Update), |a| {
            engine::set_versions(&a, path, VersionOp::Delete, &input.versions, false)
        })
    }

    pub fn kv_undelete(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvDelete,
    ) -> Result<(), CryptError> {
        self.run(c, &op(mount, "undelete", path, Capability::Update), |a| {
            engine::set_versions(&a, path, VersionOp::Undelete, &input.versions, false)
        })
    }

    pub fn kv_destroy(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvDelete,
    ) -> Result<(), CryptError> {
        self.run(c, &op(mount, "destroy", path, Capability::Update), |a| {
            engine::set_versions(&a, path, VersionOp::Destroy, &input.versions, false)
        })
    }

    pub fn kv_read_metadata(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
    ) -> Result<KvMetadata, CryptError> {
        self.run(c, &op(mount, "metadata", path, Capability::Read), |a| {
            engine::read_metadata(&a, path)
        })
    }

    pub fn kv_write_metadata(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
        input: &KvMetadataInput,
    ) -> Result<KvMetadata, CryptError> {
        self.run(c, &upsert(mount, "metadata", path), |a| {
            engine::write_metadata(&a, path, input)
        })
    }

    pub fn kv_delete_metadata(
        &self,
        c: &Caller,
        mount: &str,
        path: &str,
    ) -> Result<(), CryptError> {
        self.run(c, &op(mount, "metadata", path, Capability::Delete), |a| {
            engine::delete_metadata(&a, path)
        })
    }

    /// Lists the folder `dir` (`""`: the mount's root).
    pub fn kv_list(&self, c: &Caller, mount: &str, dir: &str) -> Result<KvList, CryptError> {
        let path = dir.strip_suffix('/').unwrap_or(dir);
        self.run(c, &op(mount, "metadata", path, Capability::List), |a| {
            engine::list(&a, dir)
        })
    }

    pub fn kv_read_config(&self, c: &Caller, mount: &str) -> Result<KvConfig, CryptError> {
        self.run(c, &op(mount, "config", "", Capability::Read), |a| {
            Ok(KvConfig::of(&a.mount().config))
        })
    }

    /// Changes the mount's config (policy `update` on `<mount>/config`).
    pub fn kv_write_config(
        &self,
        c: &Caller,
        mount: &str,
        input: &KvConfigInput,
    ) -> Result<KvConfig, CryptError> {
        self.run(c, &op(mount, "config", "", Capability::Update), |_| Ok(()))?;
        let mut patch = Map::new();
        if let Some(m) = input.max_versions {
            patch.insert("max_versions".to_owned(), m.into());
        }
        if let Some(b) = input.cas_required {
            patch.insert("cas_required".to_owned(), b.into());
        }
        if let Some(d) = input.delete_version_after {
            patch.insert("delete_version_after".to_owned(), d.into());
        }
        let m = self.update_mount(
            c,
            mount,
            MountUpdate {
                description: None,
                config: Some(Value::Object(patch)),
            },
        )?;
        Ok(KvConfig::of(&m.config))
    }
}
