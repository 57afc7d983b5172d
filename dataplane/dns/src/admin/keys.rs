//! TSIG keys managed over the admin API (`mcctl dns tsig`), beside the
//! config file's `[[dns.tsig_keys]]`: stored in `mcns.redb` with the secret
//! sealed (bound to its row) by the key file beside the store, published
//! to the workers as one `ArcSwap` of keys.
//!
//! Invariants: a name is either a config key or an API key, never both
//! (the config file's key wins: the API refuses to shadow or remove it);
//! secrets never leave through the API except once, when generated.

use std::sync::Arc;

use mc_kit::api::{ApiError, Invalid};
use mc_kit::origin::Origin;
use mc_kit::seal::{KeyFileSealer, Sealer as _};
use mc_kit::store::Store;
use mc_kit::store::json::{ReadTx, WriteTx};
use serde::{Deserialize, Serialize};

use super::state::DnsState;
use super::store as db;
use crate::model::ZoneName;
use crate::tsig::{TsigKey, parse_algorithm};

/// API keys, at most.
pub(crate) const MAX_KEYS: usize = 1_000;
/// Zones one key may change, at most.
pub(crate) const MAX_UPDATE_ZONES: usize = 100;
/// The table sealed secrets are bound to.
const SEALED_IN: &str = "tsig_keys";

/// One API key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    /// The base64 secret, sealed, as hex.
    pub(crate) secret_sealed: String,
    pub(crate) update_zones: Vec<ZoneName>,
}

fn sealing(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("TSIG key store: {e}"))
}

/// Opens every stored key (at start).
pub(super) fn load(store: &Store, sealer: &KeyFileSealer) -> Result<Vec<TsigKey>, ApiError> {
    let tx = ReadTx::begin(store).map_err(sealing)?;
    let mut keys = Vec::new();
    for k in tx.all(db::TSIG_KEYS).map_err(sealing)? {
        let sealed = data_encoding::HEXLOWER
            .decode(k.secret_sealed.as_bytes())
            .map_err(sealing)?;
        let secret = sealer
            .open(SEALED_IN, k.name.as_bytes(), &sealed)
            .map_err(sealing)?;
        let secret = String::from_utf8(secret.to_vec()).map_err(sealing)?;
        let algorithm = parse_algorithm(&k.algorithm).map_err(sealing)?;
        let mut key = TsigKey::new(&k.name, algorithm, &secret).map_err(sealing)?;
        key.update_zones = k.update_zones;
        keys.push(key);
    }
    Ok(keys)
}

/// A key as the API shows it.
#[derive(Debug, Clone)]
pub(crate) struct KeyView {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) update_zones: Vec<ZoneName>,
    pub(crate) origin: Origin,
}

fn view(k: &TsigKey, origin: Origin) -> KeyView {
    KeyView {
        name: k.name_str.clone(),
        algorithm: k
            .algorithm
            .to_name()
            .to_ascii()
            .trim_end_matches('.')
            .to_owned(),
        update_zones: k.update_zones.clone(),
        origin,
    }
}

impl DnsState {
    /// Every key: the config file's, then the API's.
    pub(crate) fn tsig_keys(&self) -> Vec<KeyView> {
        let api = self.published.api_keys.load();
        self.published
            .settings
            .tsig_keys
            .iter()
            .map(|k| view(k, Origin::ConfigFile))
            .chain(api.iter().map(|k| view(k, Origin::AdminApi)))
            .collect()
    }

    /// Creates or replaces API key `name`; an empty `secret` is generated
    /// and returned (once).
    pub(crate) fn put_tsig_key(
        &self,
        name: &str,
        algorithm: &str,
        secret: &str,
        update_zones: &[String],
    ) -> Result<(KeyView, Option<String>), ApiError> {
        let algorithm = parse_algorithm(if algorithm.is_empty() {
            "hmac-sha256"
        } else {
            algorithm
        })
        .map_err(|m| Invalid::new("key.algorithm", m))?;
        let generated = secret
            .trim()
            .is_empty()
            .then(|| data_encoding::BASE64.encode(&rand::random::<[u8; 32]>()));
        let secret = generated.as_deref().unwrap_or(secret);
        let mut key = TsigKey::new(name, algorithm, secret).map_err(|m| Invalid::new("key", m))?;
        if update_zones.len() > MAX_UPDATE_ZONES {
            return Err(Invalid::new(
                "key.update_zones",
                format!("at most {MAX_UPDATE_ZONES} zones"),
            )
            .into());
        }
        key.update_zones = update_zones
            .iter()
            .map(|z| ZoneName::parse(z).map_err(|e| Invalid::new("key.update_zones", e.message)))
            .collect::<Result<_, _>>()?;
        if self
            .published
            .settings
            .tsig_keys
            .iter()
            .any(|k| k.name == key.name)
        {
            return Err(ApiError::FailedPrecondition(format!(
                "key `{}` comes from the config file; change it there",
                key.name_str
            )));
        }
        // One writer: the admin mutex also orders key changes.
        let _guard = self.lock();
        let mut keys: Vec<TsigKey> = self.published.api_keys.load().as_ref().clone();
        keys.retain(|k| k.name != key.name);
        if keys.len() >= MAX_KEYS {
            return Err(ApiError::FailedPrecondition(format!(
                "at most {MAX_KEYS} TSIG keys"
            )));
        }
        let sealed = self
            .sealer
            .seal(SEALED_IN, key.name_str.as_bytes(), secret.trim().as_bytes())
            .map_err(sealing)?;
        let stored = StoredKey {
            name: key.name_str.clone(),
            algorithm: view(&key, Origin::AdminApi).algorithm,
            secret_sealed: data_encoding::HEXLOWER.encode(&sealed),
            update_zones: key.update_zones.clone(),
        };
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::TSIG_KEYS, stored.name.as_bytes(), &stored)?;
        tx.commit()?;
        let shown = view(&key, Origin::AdminApi);
        keys.push(key);
        self.published.api_keys.store(Arc::new(keys));
        tracing::info!(key = %shown.name, "dns: TSIG key stored");
        Ok((shown, generated))
    }

    /// Deletes API key `name`; false if there was none.
    pub(crate) fn delete_tsig_key(&self, name: &str) -> Result<bool, ApiError> {
        let host = crate::model::parse_host("name", name)?;
        if self
            .published
            .settings
            .tsig_keys
            .iter()
            .any(|k| k.name == host)
        {
            return Err(ApiError::FailedPrecondition(format!(
                "key `{name}` comes from the config file; remove it there"
            )));
        }
        let _guard = self.lock();
        let mut keys: Vec<TsigKey> = self.published.api_keys.load().as_ref().clone();
        let before = keys.len();
        keys.retain(|k| k.name != host);
        if keys.len() == before {
            return Ok(false);
        }
        let stored_name = host.to_ascii().trim_end_matches('.').to_owned();
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::TSIG_KEYS.def(), stored_name.as_bytes())?;
        tx.commit()?;
        self.published.api_keys.store(Arc::new(keys));
        tracing::info!(key = %stored_name, "dns: TSIG key deleted");
        Ok(true)
    }
}
