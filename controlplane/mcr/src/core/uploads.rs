//! Upload sessions: a directory under `uploads/` (the staged `data` and a
//! `session.json` written once) plus an in-memory entry (offset, hasher).
//!
//! Invariants: only the account that opened a session may use it (anyone
//! else sees "unknown"); a request that fails leaves the session exactly as
//! it was (the data file is cut back to the old offset and the old hasher
//! kept); after a restart a session reloads from its directory (offset =
//! length of `data`, hasher rebuilt by reading it once). Sessions are
//! bounded in all and per account; a session idle for `upload_ttl` is
//! removed when a new one would hit a bound, and at start.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use mc_kit::clock::unix_now;
use serde::{Deserialize, Serialize};

use crate::error::{Code, RegistryError};
use crate::registry::digest::{Algorithm, Hasher};
use crate::storage::Storage;

/// A session's in-memory state; its async mutex serialises requests on it.
pub(crate) struct Session {
    pub uuid: String,
    pub repo: String,
    pub owner: String,
    pub offset: u64,
    pub hasher: Hasher,
    /// Completed or cancelled: a request that waited on the lock sees "unknown".
    pub done: bool,
    /// For idle expiry.
    pub last_used: std::time::Instant,
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
    ttl: std::time::Duration,
}

fn unknown() -> RegistryError {
    RegistryError::not_found(Code::BlobUploadUnknown, "blob upload unknown to registry")
}

impl Sessions {
    pub(crate) fn new(max: usize, per_account: usize, ttl: std::time::Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            per_account,
            ttl,
        }
    }

    /// Removes sessions idle for longer than the TTL (busy ones stay).
    fn expire(&self, fs: &Storage, map: &mut HashMap<String, Handle>) {
        let ttl = self.ttl;
        map.retain(|uuid, h| match h.try_lock() {
            Ok(mut s) if s.last_used.elapsed() > ttl => {
                s.done = true;
                if let Err(e) = fs.remove_session(uuid) {
                    tracing::warn!(error = %e, "removing an expired upload session");
                }
                false
            }
            _ => true,
        });
    }

    /// GC's step 4: removes idle sessions, in memory and (sessions of a
    /// previous process never reloaded) on disk; returns how many.
    pub(crate) fn sweep(&self, fs: &Storage) -> usize {
        let mut map = self.lock();
        let before = map.len();
        self.expire(fs, &mut map);
        let mut removed = before - map.len();
        match fs.expire_sessions_except(self.ttl, |uuid| map.contains_key(uuid)) {
            Ok(n) => removed += n,
            Err(e) => tracing::warn!(error = %e, "expiring upload sessions on disk"),
        }
        removed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `owner` in `repo`.
    pub(crate) fn open(
        &self,
        fs: &Storage,
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
            last_used: std::time::Instant::now(),
        }));
        {
            let mut map = self.lock();
            let mine = |map: &HashMap<String, Handle>| {
                map.values()
                    .filter(|s| s.try_lock().map(|s| s.owner == owner).unwrap_or(true))
                    .count()
            };
            if map.len() >= self.max || mine(&map) >= self.per_account {
                self.expire(fs, &mut map);
            }
            if map.len() >= self.max || mine(&map) >= self.per_account {
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
        fs: &Storage,
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
                    last_used: std::time::Instant::now(),
                }));
                self.lock().entry(uuid.to_owned()).or_insert(h).clone()
            }
        };
        let ok = handle
            .try_lock()
            .map(|mut s| {
                s.last_used = std::time::Instant::now();
                s.repo == repo && s.owner == owner
            })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::digest::Digest;

    #[test]
    fn sessions_are_bounded_owned_reloaded_and_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = Storage::open_fs(dir.path()).expect("fs");
        let hour = Duration::from_secs(3600);
        let s = Sessions::new(2, 1, hour);
        let a = s.open(&fs, "r", "alice", Algorithm::Sha256).expect("first");
        let refused = s.open(&fs, "r", "alice", Algorithm::Sha256).err();
        assert_eq!(
            refused.map(|e| e.code),
            Some(Code::TooManyRequests),
            "per account"
        );
        s.open(&fs, "r", "bob", Algorithm::Sha256).expect("bob's");
        let refused = s.open(&fs, "r", "carol", Algorithm::Sha256).err();
        assert_eq!(
            refused.map(|e| e.code),
            Some(Code::TooManyRequests),
            "in all"
        );

        let uuid = a.try_lock().expect("idle").uuid.clone();
        assert!(s.get(&fs, &uuid, "r", "bob").is_err(), "not bob's");
        assert!(
            s.get(&fs, &uuid, "other", "alice").is_err(),
            "not in another repository"
        );
        assert!(s.get(&fs, &uuid, "r", "alice").is_ok());

        // After a restart the session reloads from its directory.
        std::fs::write(fs.session_data(&uuid).expect("data"), b"staged").expect("write");
        let fresh = Sessions::new(2, 1, hour);
        let h = fresh.get(&fs, &uuid, "r", "alice").expect("reloaded");
        let g = h.try_lock().expect("idle");
        assert_eq!(g.offset, 6);
        assert_eq!(
            g.hasher.clone().finish(),
            Digest::of(Algorithm::Sha256, b"staged")
        );
        drop(g);

        // Idle sessions make room; their directories go.
        let short = Sessions::new(1, 1, Duration::ZERO);
        let old = short
            .open(&fs, "r", "dave", Algorithm::Sha256)
            .expect("old");
        let old_uuid = old.try_lock().expect("idle").uuid.clone();
        std::thread::sleep(Duration::from_millis(5));
        short
            .open(&fs, "r", "erin", Algorithm::Sha256)
            .expect("room made");
        assert!(
            fs.session_meta(&old_uuid).is_err(),
            "expired session removed"
        );
        assert!(old.try_lock().expect("idle").done);
        assert_eq!(fs.expire_sessions(Duration::ZERO).expect("sweep"), 3);
    }
}
