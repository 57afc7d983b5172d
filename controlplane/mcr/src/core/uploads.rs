//! Upload sessions: a directory under `uploads/` (the staged `data` and a
//! `session.json` written once) plus an in-memory entry (offset, hasher).
//!
//! Invariants: only the account that opened a session may use it (anyone
//! else sees "unknown"); a request that fails leaves the session exactly as
//! it was (the data file is cut back to the old offset and the old hasher
//! kept); after a restart a session reloads from its directory (offset =
//! length of `data`, hasher rebuilt by reading it once). Sessions are
//! bounded in all and per account.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use mc_kit::clock::unix_now;
use serde::{Deserialize, Serialize};

use crate::error::{Code, RegistryError};
use crate::registry::digest::{Algorithm, Hasher};
use crate::storage::FsStore;

/// A session's in-memory state; its async mutex serialises requests on it.
pub(crate) struct Session {
    pub uuid: String,
    pub repo: String,
    pub owner: String,
    pub offset: u64,
    pub hasher: Hasher,
    /// Completed or cancelled: a request that waited on the lock sees "unknown".
    pub done: bool,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    repo: String,
    owner: String,
    algorithm: Algorithm,
    created_at: i64,
}

pub(crate) type Handle = Arc<tokio::sync::Mutex<Session>>;

/// Every open session of the process.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Handle>>,
    max: usize,
    per_account: usize,
}

fn unknown() -> RegistryError {
    RegistryError::not_found(Code::BlobUploadUnknown, "blob upload unknown to registry")
}

impl Sessions {
    pub(crate) fn new(max: usize, per_account: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            per_account,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `owner` in `repo`.
    pub(crate) fn open(
        &self,
        fs: &FsStore,
        repo: &str,
        owner: &str,
        alg: Algorithm,
    ) -> Result<Handle, RegistryError> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            uuid: uuid.clone(),
            repo: repo.to_owned(),
            owner: owner.to_owned(),
            offset: 0,
            hasher: Hasher::new(alg),
            done: false,
        }));
        {
            let mut map = self.lock();
            let mine = map
                .values()
                .filter(|s| s.try_lock().map(|s| s.owner == owner).unwrap_or(true))
                .count();
            if map.len() >= self.max || mine >= self.per_account {
                return Err(RegistryError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    Code::TooManyRequests,
                    "too many open upload sessions",
                )
                .header(axum::http::header::RETRY_AFTER, "60"));
            }
            map.insert(uuid.clone(), session.clone());
        }
        let meta = serde_json::to_vec(&Meta {
            repo: repo.to_owned(),
            owner: owner.to_owned(),
            algorithm: alg,
            created_at: unix_now(),
        })
        .map_err(RegistryError::internal);
        let created = meta.and_then(|m| fs.create_session(&uuid, &m).map_err(RegistryError::from));
        if let Err(e) = created {
            self.lock().remove(&uuid);
            return Err(e);
        }
        Ok(session)
    }

    /// The session `uuid` of `owner` in `repo`, reloading it from disk
    /// after a restart.
    pub(crate) fn get(
        &self,
        fs: &FsStore,
        uuid: &str,
        repo: &str,
        owner: &str,
    ) -> Result<Handle, RegistryError> {
        let found = self.lock().get(uuid).cloned();
        let handle = match found {
            Some(h) => h,
            None => {
                let meta = fs.session_meta(uuid).map_err(|_| unknown())?;
                let meta: Meta = serde_json::from_slice(&meta).map_err(|_| unknown())?;
                let data = fs.session_data(uuid).map_err(|_| unknown())?;
                let mut hasher = Hasher::new(meta.algorithm);
                let mut f = std::fs::File::open(&data).map_err(|_| unknown())?;
                let mut buf = vec![0_u8; 256 * 1024];
                let mut offset = 0_u64;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    offset += n as u64;
                }
                let h = Arc::new(tokio::sync::Mutex::new(Session {
                    uuid: uuid.to_owned(),
                    repo: meta.repo,
                    owner: meta.owner,
                    offset,
                    hasher,
                    done: false,
                }));
                self.lock().entry(uuid.to_owned()).or_insert(h).clone()
            }
        };
        let ok = handle
            .try_lock()
            .map(|s| s.repo == repo && s.owner == owner)
            // Busy: whoever holds it checks ownership on use.
            .unwrap_or(true);
        if !ok {
            return Err(unknown());
        }
        Ok(handle)
    }

    /// Forgets a session (its directory is removed by the caller).
    pub(crate) fn remove(&self, uuid: &str) {
        self.lock().remove(uuid);
    }
}

/// Checks, under the session's lock, that it is `owner`'s in `repo`.
pub(crate) fn check_owner(s: &Session, repo: &str, owner: &str) -> Result<(), RegistryError> {
    if !s.done && s.repo == repo && s.owner == owner {
        Ok(())
    } else {
        Err(unknown())
    }
}
