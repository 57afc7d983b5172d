//! The transit engine's operations as core calls: each names its mount, its
//! policy path and capability (Vault's: `keys` list; `keys/<name>` create,
//! read, delete; `keys/<name>/config|rotate|trim`, `encrypt|decrypt|rewrap|
//! sign|verify|hmac/<name>`, `datakey/<kind>/<name>`, `random`, `hash`
//! update; `export/<kind>/<name>` read) and runs through [`Metacrypt::run`].
//! A single item and a batch are the same call ([`Batched`]).
//!
//! Invariant: data operations use the cached key and touch no store, except
//! an encrypt to a missing key, which creates it (Vault's upsert) and then
//! needs `create` on the path.

use serde::Deserialize;
use serde_json::Value;

use super::run::EngineOp;
use super::{Caller, Metacrypt};
use crate::engines::Engine;
use crate::engines::transit::engine::{Change, Transit};
use crate::engines::transit::{
    self as engine, BatchResults, DatakeyOut, DecryptOut, HashOut, HmacOut, KeyState, RandomOut,
    SignOut, TransitKey, VerifyOut,
};
use crate::error::CryptError;
use crate::policy::Capability;

/// The request and answer types the adapters use (they reach engines only through core).
pub(crate) use crate::engines::transit::batch::MAX_BATCH;
pub(crate) use crate::engines::transit::wire::{Period, flexible_u32};
pub(crate) use crate::engines::transit::{
    ConfigKey, CreateKey, DatakeyRequest, DecryptItem, Dialect, EncryptItem, EncryptOut,
    HashRequest, HmacItem, HmacParams, Input, RandomRequest, RewrapItem, SignItem, SignParams,
    TransitError, VerifyItem,
};

/// A request's single item (top-level fields) or its `batch_input`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(bound(deserialize = "I: Deserialize<'de> + Default"))]
pub struct Batched<I> {
    #[serde(flatten)]
    pub item: I,
    #[serde(default)]
    pub batch_input: Option<Vec<I>>,
    #[serde(default, deserialize_with = "code")]
    pub partial_failure_response_code: Option<u16>,
}

fn code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    use serde::de::Error;
    flexible_u32(d)?
        .map(|n| u16::try_from(n).map_err(|_| D::Error::custom("an HTTP status")))
        .transpose()
}

impl<I> Batched<I> {
    pub fn one(item: I) -> Self {
        Self {
            item,
            batch_input: None,
            partial_failure_response_code: None,
        }
    }
}

/// A single answer, or a batch's results with the status Vault gives them.
#[derive(Debug)]
pub enum Answer<T> {
    One(T),
    Batch {
        results: BatchResults<T>,
        status: u16,
    },
}

fn answer<I, T>(
    req: &Batched<I>,
    reference: impl Fn(&I) -> Option<String>,
    mut op: impl FnMut(&I) -> Result<T, TransitError>,
) -> Result<Answer<T>, CryptError> {
    match &req.batch_input {
        Some(items) => {
            let results = BatchResults::run(items, reference, op)?;
            let status = results.status(req.partial_failure_response_code);
            Ok(Answer::Batch { results, status })
        }
        None => Ok(Answer::One(op(&req.item)?)),
    }
}

/// `POST encrypt/<name>`: the items, plus `type` for a key it creates.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EncryptRequest {
    #[serde(flatten)]
    pub batch: Batched<EncryptItem>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `POST sign|verify/<name>`: the shared parameters and the items.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(bound(deserialize = "I: Deserialize<'de> + Default"))]
pub struct SignRequest<I> {
    #[serde(flatten)]
    pub params: SignParams,
    #[serde(flatten)]
    pub batch: Batched<I>,
}

/// `POST hmac/<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HmacRequest {
    #[serde(flatten)]
    pub params: HmacParams,
    #[serde(flatten)]
    pub batch: Batched<HmacItem>,
}

struct Op<'a> {
    mount: &'a str,
    sub: String,
    capability: Capability,
    alternative: Option<Capability>,
}

impl EngineOp for Op<'_> {
    const ENGINE: &'static str = Transit::TYPE;
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

fn op(mount: &str, sub: String, capability: Capability) -> Op<'_> {
    Op {
        mount,
        sub,
        capability,
        alternative: None,
    }
}

fn now() -> u64 {
    u64::try_from(mc_kit::clock::unix_now()).unwrap_or(0)
}

fn named(name: &str) -> Result<(), CryptError> {
    engine::validate_name(name).map_err(CryptError::from)
}

/// A data operation on a missing key: 400, as Vault.
fn no_key(name: &str) -> CryptError {
    CryptError::invalid("name", format!("encryption key not found: {name}"))
}

impl Metacrypt {
    pub(crate) fn transit(&self) -> &Transit {
        self.engines().transit()
    }

    /// `LIST keys`.
    pub fn transit_list_keys(&self, c: &Caller, mount: &str) -> Result<Vec<String>, CryptError> {
        self.run(c, &op(mount, "keys".into(), Capability::List), |a| {
            self.transit().names(&a)
        })
    }

    /// `POST keys/<name>`: creates the key; an existing key is left as it is (Vault).
    pub fn transit_create_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &CreateKey,
    ) -> Result<Value, CryptError> {
        let o = Op {
            alternative: Some(Capability::Update),
            ..op(mount, format!("keys/{name}"), Capability::Create)
        };
        self.run(c, &o, |a| {
            // Checked after policy, so a refused caller learns nothing from it.
            named(name)?;
            // Generated before the transaction (RSA takes a while); refused input changes nothing.
            let fresh = KeyState::create(name, req, now())?;
            let key = self
                .transit()
                .change(&a, name, "transit.key.create", |cur| match cur {
                    Some(_) => Ok((Change::Keep, String::new())),
                    None => {
                        a.require(Capability::Create)?;
                        let detail = format!("type={}", fresh.kind.native_name());
                        Ok((Change::Put(fresh), detail))
                    }
                })?;
            let key = key.ok_or_else(|| CryptError::internal("created key vanished"))?;
            Ok(engine::describe(key.state(), Dialect::Native))
        })
    }

    /// `GET keys/<name>`.
    pub fn transit_read_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        dialect: Dialect,
    ) -> Result<Value, CryptError> {
        self.run(
            c,
            &op(mount, format!("keys/{name}"), Capability::Read),
            |a| {
                named(name)?;
                Ok(engine::describe(
                    self.transit().require(&a, name)?.state(),
                    dialect,
                ))
            },
        )
    }

    fn key_change(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        sub: &str,
        action: &str,
        f: impl FnOnce(&KeyState) -> Result<(Option<KeyState>, String), TransitError>,
    ) -> Result<Option<Value>, CryptError> {
        let (path, cap) = if sub.is_empty() {
            (format!("keys/{name}"), Capability::Delete)
        } else {
            (format!("keys/{name}/{sub}"), Capability::Update)
        };
        self.run(c, &op(mount, path, cap), |a| {
            // Checked after policy, so a refused caller learns nothing from it.
            named(name)?;
            let key = self.transit().change(&a, name, action, |cur| {
                let cur =
                    cur.ok_or_else(|| CryptError::NotFound(format!("no key named {name}")))?;
                let (next, detail) = f(cur)?;
                Ok((next.map_or(Change::Delete, Change::Put), detail))
            })?;
            Ok(key.map(|k| engine::describe(k.state(), Dialect::Native)))
        })
    }

    /// `POST keys/<name>/config`.
    pub fn transit_config_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &ConfigKey,
    ) -> Result<Value, CryptError> {
        let v = self.key_change(c, mount, name, "config", "transit.key.config", |cur| {
            let mut next = cur.clone();
            next.configure(req)?;
            let detail = format!(
                "min_decryption_version={} min_encryption_version={} deletion_allowed={} exportable={}",
                next.min_decryption_version, next.min_encryption_version, next.deletion_allowed, next.exportable
            );
            Ok((Some(next), detail))
        })?;
        v.ok_or_else(|| CryptError::internal("configured key vanished"))
    }

    /// `POST keys/<name>/rotate`.
    pub fn transit_rotate_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
    ) -> Result<Value, CryptError> {
        let v = self.key_change(c, mount, name, "rotate", "transit.key.rotate", |cur| {
            let mut next = cur.clone();
            let v = next.rotate(now())?;
            Ok((Some(next), format!("version={v}")))
        })?;
        v.ok_or_else(|| CryptError::internal("rotated key vanished"))
    }

    /// `POST keys/<name>/trim` `{min_available_version}`.
    pub fn transit_trim_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        min_available_version: Option<u32>,
    ) -> Result<Value, CryptError> {
        let v = self.key_change(c, mount, name, "trim", "transit.key.trim", |cur| {
            let mut next = cur.clone();
            next.trim(min_available_version)?;
            let detail = format!("min_available_version={}", next.min_available_version);
            Ok((Some(next), detail))
        })?;
        v.ok_or_else(|| CryptError::internal("trimmed key vanished"))
    }

    /// `DELETE keys/<name>`: only with `deletion_allowed`.
    pub fn transit_delete_key(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
    ) -> Result<(), CryptError> {
        self.key_change(c, mount, name, "", "transit.key.delete", |cur| {
            cur.check_delete()?;
            Ok((None, String::new()))
        })?;
        Ok(())
    }

    /// `GET export/<kind>/<name>[/<version>]`.
    pub fn transit_export_key(
        &self,
        c: &Caller,
        mount: &str,
        kind: &str,
        name: &str,
        version: Option<&str>,
        dialect: Dialect,
    ) -> Result<Value, CryptError> {
        self.run(
            c,
            &op(mount, format!("export/{kind}/{name}"), Capability::Read),
            |a| {
                named(name)?;
                let key = self.transit().require(&a, name)?;
                Ok(engine::export(&key, kind, version, dialect)?)
            },
        )
    }

    fn data_op<R>(
        &self,
        c: &Caller,
        mount: &str,
        sub: String,
        name: &str,
        f: impl FnOnce(&TransitKey) -> Result<R, CryptError>,
    ) -> Result<R, CryptError> {
        self.run(c, &op(mount, sub, Capability::Update), |a| {
            // Checked after policy, so a refused caller learns nothing from it.
            named(name)?;
            let key = self.transit().key(&a, name)?.ok_or_else(|| no_key(name))?;
            f(&key)
        })
    }

    /// `POST encrypt/<name>`: creates a missing key (`type`, default aes256-gcm) with `create`.
    pub fn transit_encrypt(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &EncryptRequest,
    ) -> Result<Answer<EncryptOut>, CryptError> {
        let o = Op {
            alternative: Some(Capability::Create),
            ..op(mount, format!("encrypt/{name}"), Capability::Update)
        };
        self.run(c, &o, |a| {
            // Checked after policy, so a refused caller learns nothing from it.
            named(name)?;
            let key = match self.transit().key(&a, name)? {
                Some(k) => {
                    a.require(Capability::Update)?;
                    k
                }
                None => {
                    a.require(Capability::Create)?;
                    let create = CreateKey {
                        kind: req.kind.clone(),
                        ..CreateKey::default()
                    };
                    let fresh = KeyState::create(name, &create, now())?;
                    let detail = format!("type={} (upsert)", fresh.kind.native_name());
                    self.transit()
                        .change(&a, name, "transit.key.create", |cur| {
                            Ok((
                                if cur.is_some() {
                                    Change::Keep
                                } else {
                                    Change::Put(fresh)
                                },
                                detail,
                            ))
                        })?
                        .ok_or_else(|| no_key(name))?
                }
            };
            answer(&req.batch, |i| i.reference.clone(), |i| key.encrypt(i))
        })
    }

    pub fn transit_decrypt(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &Batched<DecryptItem>,
    ) -> Result<Answer<DecryptOut>, CryptError> {
        self.data_op(c, mount, format!("decrypt/{name}"), name, |k| {
            answer(req, |i| i.reference.clone(), |i| k.decrypt(i))
        })
    }

    pub fn transit_rewrap(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &Batched<RewrapItem>,
    ) -> Result<Answer<EncryptOut>, CryptError> {
        self.data_op(c, mount, format!("rewrap/{name}"), name, |k| {
            answer(req, |i| i.reference.clone(), |i| k.rewrap(i))
        })
    }

    /// `POST datakey/<plaintext|wrapped>/<name>`.
    pub fn transit_datakey(
        &self,
        c: &Caller,
        mount: &str,
        kind: &str,
        name: &str,
        req: &Batched<DatakeyRequest>,
    ) -> Result<Answer<DatakeyOut>, CryptError> {
        self.data_op(c, mount, format!("datakey/{kind}/{name}"), name, |k| {
            // After policy, as every check of the request.
            let with_plaintext = match kind {
                "plaintext" => true,
                "wrapped" => false,
                _ => return Err(CryptError::invalid("type", "plaintext or wrapped")),
            };
            answer(
                req,
                |i| i.reference.clone(),
                |i| k.datakey(i, with_plaintext),
            )
        })
    }

    pub fn transit_sign(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &SignRequest<SignItem>,
    ) -> Result<Answer<SignOut>, CryptError> {
        self.data_op(c, mount, format!("sign/{name}"), name, |k| {
            answer(
                &req.batch,
                |i| i.reference.clone(),
                |i| k.sign(&req.params, i),
            )
        })
    }

    pub fn transit_verify(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &SignRequest<VerifyItem>,
    ) -> Result<Answer<VerifyOut>, CryptError> {
        self.data_op(c, mount, format!("verify/{name}"), name, |k| {
            answer(
                &req.batch,
                |i| i.reference.clone(),
                |i| k.verify(&req.params, i),
            )
        })
    }

    pub fn transit_hmac(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        req: &HmacRequest,
    ) -> Result<Answer<HmacOut>, CryptError> {
        self.data_op(c, mount, format!("hmac/{name}"), name, |k| {
            answer(
                &req.batch,
                |i| i.reference.clone(),
                |i| k.hmac(&req.params, i),
            )
        })
    }

    /// `POST random[/<bytes>]` (policy `update` on `<mount>/random`).
    pub fn transit_random(
        &self,
        c: &Caller,
        mount: &str,
        req: &RandomRequest,
    ) -> Result<RandomOut, CryptError> {
        self.run(c, &op(mount, "random".into(), Capability::Update), |_| {
            Ok(engine::random_bytes(req)?)
        })
    }

    /// `POST hash[/<algo>]` (policy `update` on `<mount>/hash`).
    pub fn transit_hash(
        &self,
        c: &Caller,
        mount: &str,
        req: &HashRequest,
    ) -> Result<HashOut, CryptError> {
        self.run(c, &op(mount, "hash".into(), Capability::Update), |_| {
            Ok(engine::hash(req)?)
        })
    }
}

#[cfg(test)]
mod tests;
