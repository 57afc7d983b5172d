//! The barrier: the only holder of key material. States
//! `Uninitialized → Sealed ⇄ Unsealed` in an [`ArcSwap`]; init, unseal
//! (passphrase slot or k of n Shamir shares), seal; sealing and opening
//! rows with a mount's DEK ring.
//!
//! Key hierarchy: slot KWK (Argon2id of the passphrase, or the secret the
//! Shamir shares combine to) unwraps the root key, which unwraps the MEK,
//! which unwraps each mount's DEK versions (ring 0 is `sys`).
//!
//! Invariants: every process start is Sealed (Uninitialized without a
//! `barrier_seal` row); every key is zeroized when the last
//! `Arc<Unsealed>` drops, and `seal` swaps it out; one derivation runs at
//! a time and attempts back off after repeated failures; every init,
//! unseal attempt and seal is audited (the unseal attempt even when
//! refused), in the transaction of the change it records.

pub(crate) mod envelope;
pub(crate) mod keyfile;
pub(crate) mod keys;
pub(crate) mod limits;
pub(crate) mod rekey;
pub(crate) mod rewrap;
pub(crate) mod rings;
pub(crate) mod rootkey;
pub(crate) mod sealer;
pub(crate) mod shamir;
pub(crate) mod slots;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::aead::LessSafeKey;
use mc_kit::api::ApiError;
use mc_kit::store::Store;
use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::{ReadTx, WriteTx};
use serde::Serialize;
use zeroize::Zeroizing;

use self::keys::{
    ArgonParams, Key, KeyError, aad_dek, aad_mek, aad_slot, derive_kwk, unwrap_key, wrap,
};
use self::limits::Backoff;
pub(crate) use self::limits::{open_failures, unseal_counts};
use self::shamir::{Share, ShareError};
pub(crate) use self::slots::{DekRecord, MekRecord, SealConfig, Slot, SlotKind};
use crate::store::{BARRIER_KEYS, BARRIER_MEK, BARRIER_SEAL, MEK_KEY, SEAL_KEY, dek_key};

/// The mount id of the barrier's own ring (`sys` tables).
pub(crate) const SYS_MOUNT: u64 = 0;
/// `init` refuses shorter passphrases.
pub(crate) const MIN_PASSPHRASE_CHARS: usize = 12;
const MAX_PASSPHRASE_BYTES: usize = 1024;
/// How long `seal` waits for in-flight operations to drop the keys.
const SEAL_WAIT: Duration = Duration::from_secs(5);
/// Shamir progress is discarded after this long without a share.
const PROGRESS_IDLE: Duration = Duration::from_secs(600);

/// One mount's DEK versions, ready to use.
pub(crate) struct DekRing {
    pub(crate) current: u32,
    keys: BTreeMap<u32, (LessSafeKey, Key)>,
}

/// The unsealed state: every key, zeroized when the last reference drops.
pub(crate) struct Unsealed {
    pub(crate) root_version: u32,
    pub(crate) mek_version: u32,
    #[allow(dead_code)]
    root: Key,
    mek: Key,
    rings: BTreeMap<u64, DekRing>,
    /// Distinct for every unsealed state built (unseal, ring or MEK
    /// change), so the core knows when to recompile mounts and policy.
    pub(crate) epoch: u64,
}

/// The next [`Unsealed::epoch`].
pub(crate) fn next_epoch() -> u64 {
    static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

// The engines' seam: they store rows only through these (`sealer`).
impl Unsealed {
    /// Seals `plain` for row `row_key` of `table` with the mount's current DEK.
    pub(crate) fn seal_row(
        &self,
        mount: u64,
        table: &str,
        row_key: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let ring = self
            .rings
            .get(&mount)
            .ok_or_else(|| ApiError::internal("no DEK ring"))?;
        let (key, _) = ring
            .keys
            .get(&ring.current)
            .ok_or_else(|| ApiError::internal("no current DEK"))?;
        envelope::seal(key, ring.current, table, row_key, plain).map_err(ApiError::internal)
    }

    /// Opens a sealed row; any failure is `Internal` (logged with table).
    pub(crate) fn open_row(
        &self,
        mount: u64,
        table: &str,
        row_key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let fail = |why: &dyn std::fmt::Display| {
            tracing::error!(table, error = %why, "barrier.open_failed");
            limits::count_open_failure();
            ApiError::internal("a sealed value does not open")
        };
        let env = envelope::parse(sealed).map_err(|e| fail(&e))?;
        let ring = self.rings.get(&mount).ok_or_else(|| fail(&"no DEK ring"))?;
        let (key, _) = ring
            .keys
            .get(&env.dek_version)
            .ok_or_else(|| fail(&"unknown DEK version"))?;
        envelope::open(key, &env, table, row_key).map_err(|e| fail(&e))
    }
}

pub(crate) enum State {
    Uninitialized,
    Sealed,
    Unsealed(Arc<Unsealed>),
}

/// The barrier's state as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `uninitialized`, `sealed` or `unsealed`.
    pub state: &'static str,
    pub initialized: bool,
    pub sealed: bool,
    /// Slot kinds, in order (`passphrase`, `shamir`).
    pub slots: Vec<&'static str>,
    /// The Shamir threshold and share count (0 without a Shamir slot).
    pub threshold: u32,
    pub shares: u32,
    /// Shares accepted towards the threshold so far.
    pub progress: u32,
}

/// Who is acting, for audit rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Actor {
    pub(crate) actor: String,
    pub(crate) ip: String,
}

impl Actor {
    fn event(&self, action: &str, result: &str, detail: String) -> AuditEvent {
        AuditEvent {
            at: now_unix(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: "barrier".to_owned(),
            source_ip: self.ip.clone(),
            result: result.to_owned(),
            detail,
            ..AuditEvent::default()
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What `init` asks for.
pub(crate) struct InitRequest {
    pub(crate) passphrase: Option<Zeroizing<String>>,
    /// `(n, k)`.
    pub(crate) shamir: Option<(u8, u8)>,
}

/// What an unseal attempt brings.
pub(crate) enum UnsealInput {
    Passphrase(Zeroizing<String>),
    Share(Zeroizing<String>),
    Reset,
}

#[derive(Default)]
struct Progress {
    shares: Vec<Share>,
    last: Option<Instant>,
}

pub(crate) struct Barrier {
    store: Arc<Store>,
    state: ArcSwap<State>,
    progress: Mutex<Progress>,
    backoff: Backoff,
    derivation: tokio::sync::Semaphore,
    wait: Duration,
    argon: ArgonParams,
    /// Held across every change of key rows and its swap into memory (MEK
    /// rotation, ring creation and removal), so none loses another's ring.
    key_changes: Mutex<()>,
    /// Key sets from before a DEK rotation, until no operation holds them
    /// (a rewrap job waits for that: `rewrap::Barrier::quiesce`).
    pre_rotation: Mutex<Vec<std::sync::Weak<Unsealed>>>,
}

fn key_err(e: KeyError) -> ApiError {
    ApiError::internal(e)
}

impl Barrier {
    /// Opens the barrier over `store`: Sealed when initialized, else Uninitialized.
    pub(crate) fn open(
        store: Arc<Store>,
        config: &crate::config::MetacryptConfig,
    ) -> Result<Self, ApiError> {
        let initialized = ReadTx::begin(&store)?
            .get(BARRIER_SEAL, SEAL_KEY)?
            .is_some();
        Ok(Self {
            store,
            state: ArcSwap::from_pointee(if initialized {
                State::Sealed
            } else {
                State::Uninitialized
            }),
            progress: Mutex::new(Progress::default()),
            backoff: Backoff::new(
                config.unseal_backoff_after,
                config.unseal_backoff.get(),
                config.unseal_backoff_max.get(),
            ),
            derivation: tokio::sync::Semaphore::new(1),
            wait: config.unseal_wait.get(),
            argon: ArgonParams {
                m: config.argon2_memory_kib,
                t: config.argon2_iterations,
                p: config.argon2_parallelism,
            },
            key_changes: Mutex::new(()),
            pre_rotation: Mutex::new(Vec::new()),
        })
    }

    /// The unsealed state, or 503 `sealed` (the hook every engine route
    /// goes through before it reads its path or body).
    pub(crate) fn unsealed(&self) -> Result<Arc<Unsealed>, ApiError> {
        match &**self.state.load() {
            State::Unsealed(u) => Ok(u.clone()),
            State::Sealed | State::Uninitialized => Err(ApiError::Unavailable("sealed".to_owned())),
        }
    }

    pub(crate) fn status(&self) -> Result<Status, ApiError> {
        let state = self.state.load();
        let (name, initialized, sealed) = match &**state {
            State::Uninitialized => ("uninitialized", false, true),
            State::Sealed => ("sealed", true, true),
            State::Unsealed(_) => ("unsealed", true, false),
        };
        let mut status = Status {
            state: name,
            initialized,
            sealed,
            slots: Vec::new(),
            threshold: 0,
            shares: 0,
            progress: 0,
        };
        if initialized && let Some(cfg) = ReadTx::begin(&self.store)?.get(BARRIER_SEAL, SEAL_KEY)? {
            for s in &cfg.slots {
                status.slots.push(s.kind.name());
                if let SlotKind::Shamir { n, k, .. } = s.kind {
                    status.shares = n.into();
                    status.threshold = k.into();
                }
            }
        }
        if sealed {
            let p = self.progress();
            status.progress = u32::try_from(p.shares.len()).unwrap_or(0);
        }
        Ok(status)
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        if p.last.is_some_and(|t| t.elapsed() > PROGRESS_IDLE) {
            *p = Progress::default();
        }
        p
    }

    /// Validates an init request (before any work).
    pub(crate) fn check_init(req: &InitRequest) -> Result<(), ApiError> {
        if req.passphrase.is_none() && req.shamir.is_none() {
            return Err(ApiError::invalid(
                "passphrase",
                "give a passphrase, shares and threshold, or both",
            ));
        }
        if let Some(p) = &req.passphrase {
            check_passphrase(p)?;
        }
        if let Some((n, k)) = req.shamir
            && (!(2..=shamir::MAX_SHARES).contains(&n) || k < 2 || k > n)
        {
            return Err(ApiError::invalid(
                "shares",
                "need 2 ≤ threshold ≤ shares ≤ 16",
            ));
        }
        Ok(())
    }

    /// Initializes the barrier (blocking: Argon2id). Leaves it unsealed;
    /// returns the Shamir shares once (they are never stored).
    pub(crate) fn init_blocking(
        &self,
        req: &InitRequest,
        who: &Actor,
    ) -> Result<Vec<Zeroizing<String>>, ApiError> {
        Self::check_init(req)?;
        if !matches!(&**self.state.load(), State::Uninitialized) {
            return Err(ApiError::FailedPrecondition(
                "already initialized".to_owned(),
            ));
        }
        let root_version = 1;
        let root = Key::random().map_err(key_err)?;
        let mut slots = Vec::new();
        let mut out = Vec::new();
        if let Some(p) = &req.passphrase {
            let mut salt = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt).map_err(|_| ApiError::internal("no randomness"))?;
            let kwk = derive_kwk(p.as_bytes(), &salt, self.argon).map_err(key_err)?;
            let id = "passphrase-1".to_owned();
            let wrapped_root = wrap(&kwk, &root, &aad_slot(&id, root_version)).map_err(key_err)?;
            use base64::Engine as _;
            slots.push(Slot {
                id,
                kind: SlotKind::Passphrase {
                    params: self.argon,
                    salt: base64::engine::general_purpose::STANDARD.encode(salt),
                },
                wrapped_root,
            });
        }
        if let Some((n, k)) = req.shamir {
            let kwk = Key::random().map_err(key_err)?;
            let mut id_bytes = [0u8; 4];
            aws_lc_rs::rand::fill(&mut id_bytes)
                .map_err(|_| ApiError::internal("no randomness"))?;
            let set_id = u32::from_be_bytes(id_bytes);
            let shares = shamir::split(kwk.bytes(), n, k, set_id)
                .map_err(|e| ApiError::invalid("shares", e.to_string()))?;
            out = shares.iter().map(shamir::encode).collect();
            let id = "shamir-1".to_owned();
            let wrapped_root = wrap(&kwk, &root, &aad_slot(&id, root_version)).map_err(key_err)?;
            slots.push(Slot {
                id,
                kind: SlotKind::Shamir { set_id, n, k },
                wrapped_root,
            });
        }
        let mek_version = 1;
        let mek = Key::random().map_err(key_err)?;
        let dek = Key::random().map_err(key_err)?;
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(BARRIER_SEAL, SEAL_KEY)?.is_some() {
            return Err(ApiError::FailedPrecondition(
                "already initialized".to_owned(),
            ));
        }
        let kinds: Vec<&str> = slots.iter().map(|s| s.kind.name()).collect();
        tx.put(
            BARRIER_SEAL,
            SEAL_KEY,
            &SealConfig {
                format: 1,
                root_version,
                slots,
            },
        )?;
        rootkey::put_mek(&tx, &root, &mek, mek_version, root_version)?;
        tx.put(
            BARRIER_KEYS,
            &dek_key(SYS_MOUNT, 1),
            &DekRecord {
                mek_version,
                wrapped: wrap(&mek, &dek, &aad_dek(SYS_MOUNT, 1, mek_version)).map_err(key_err)?,
                created_at: now_unix(),
            },
        )?;
        tx.audit(who.event("barrier.init", "ok", format!("slots={}", kinds.join(","))))?;
        tx.commit()?;
        let ring = DekRing {
            current: 1,
            keys: BTreeMap::from([(1, (dek.aead().map_err(key_err)?, dek))]),
        };
        self.state
            .store(Arc::new(State::Unsealed(Arc::new(Unsealed {
                root_version,
                mek_version,
                root,
                mek,
                rings: BTreeMap::from([(SYS_MOUNT, ring)]),
                epoch: next_epoch(),
            }))));
        tracing::info!(slots = %kinds.join(","), "metacrypt initialized and unsealed");
        Ok(out)
    }

    fn audit_only(&self, event: AuditEvent) -> Result<(), ApiError> {
        let tx = WriteTx::begin(&self.store)?;
        limits::count_unseal(&event);
        tx.audit(event)?;
        tx.commit()?;
        Ok(())
    }

    /// One unseal attempt: rate-limited, one derivation at a time, audited.
    pub(crate) async fn unseal(
        self: &Arc<Self>,
        input: UnsealInput,
        who: Actor,
    ) -> Result<Status, ApiError> {
        match &**self.state.load() {
            State::Uninitialized => {
                return Err(ApiError::FailedPrecondition("not initialized".to_owned()));
            }
            State::Unsealed(_) => return self.status(),
            State::Sealed => {}
        }
        let kind = match &input {
            UnsealInput::Reset => {
                *self.progress() = Progress::default();
                return self.status();
            }
            UnsealInput::Passphrase(p) => {
                if p.is_empty() || p.len() > MAX_PASSPHRASE_BYTES {
                    return Err(ApiError::invalid("passphrase", "1 to 1024 bytes"));
                }
                "passphrase"
            }
            UnsealInput::Share(_) => "shamir",
        };
        // A share is checked (typo, format) before it counts as an attempt.
        let share = match &input {
            UnsealInput::Share(s) => {
                Some(shamir::decode(s).map_err(|e| ApiError::invalid("share", e.to_string()))?)
            }
            _ => None,
        };
        if let Err(secs) = self.backoff.check(Instant::now()) {
            self.audit_only(who.event("barrier.unseal", "rate_limited", format!("slot={kind}")))?;
            return Err(ApiError::RateLimited(format!(
                "too many failed unseal attempts: retry in {secs}s"
            )));
        }
        let Ok(permit) = tokio::time::timeout(self.wait, self.derivation.acquire()).await else {
            self.audit_only(who.event("barrier.unseal", "rate_limited", format!("slot={kind}")))?;
            return Err(ApiError::RateLimited(
                "another unseal attempt is running".to_owned(),
            ));
        };
        let _permit = permit.map_err(ApiError::internal)?;
        let me = self.clone();
        let who2 = who.clone();
        tokio::task::spawn_blocking(move || match (input, share) {
            (UnsealInput::Passphrase(p), _) => me.unseal_passphrase_blocking(&p, &who2),
            (_, Some(share)) => me.unseal_share_blocking(share, &who2),
            _ => Err(ApiError::internal("unreachable unseal input")),
        })
        .await
        .map_err(ApiError::internal)?
    }

    fn config(&self) -> Result<SealConfig, ApiError> {
        ReadTx::begin(&self.store)?
            .get(BARRIER_SEAL, SEAL_KEY)?
            .ok_or_else(|| ApiError::FailedPrecondition("not initialized".to_owned()))
    }

    fn unseal_passphrase_blocking(
        &self,
        passphrase: &str,
        who: &Actor,
    ) -> Result<Status, ApiError> {
        let root = self.passphrase_root(passphrase)?;
        self.finish_attempt(root, "passphrase", who)
    }

    /// The root key a passphrase slot opens with `passphrase`, if any.
    fn passphrase_root(&self, passphrase: &str) -> Result<Option<Key>, ApiError> {
        use base64::Engine as _;
        let cfg = self.config()?;
        for slot in &cfg.slots {
            if let SlotKind::Passphrase { params, salt } = &slot.kind {
                let salt = base64::engine::general_purpose::STANDARD
                    .decode(salt)
                    .map_err(ApiError::internal)?;
                let kwk = derive_kwk(passphrase.as_bytes(), &salt, *params).map_err(key_err)?;
                if let Ok(r) = unwrap_key(
                    &kwk,
                    &slot.wrapped_root,
                    &aad_slot(&slot.id, cfg.root_version),
                ) {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }

    fn unseal_share_blocking(&self, share: Share, who: &Actor) -> Result<Status, ApiError> {
        let cfg = self.config()?;
        let Some(slot) = cfg
            .slots
            .iter()
            .find(|s| matches!(s.kind, SlotKind::Shamir { .. }))
        else {
            return Err(ApiError::invalid(
                "share",
                "this barrier has no Shamir slot",
            ));
        };
        let SlotKind::Shamir { set_id, k, .. } = slot.kind else {
            return Err(ApiError::internal("slot kind"));
        };
        if share.set_id != set_id {
            return Err(ApiError::invalid(
                "share",
                "the share belongs to another set",
            ));
        }
        let combined = {
            let mut p = self.progress();
            if p.shares.iter().any(|s| s.x == share.x) {
                return Err(ApiError::invalid("share", "this share was already given"));
            }
            p.shares.push(share);
            p.last = Some(Instant::now());
            let have = p.shares.len();
            if have < usize::from(k) {
                drop(p);
                self.audit_only(who.event(
                    "barrier.unseal_share",
                    "ok",
                    format!("progress={have}/{k}"),
                ))?;
                return self.status();
            }
            let r = shamir::combine(&p.shares, k);
            *p = Progress::default();
            r
        };
        let root = match combined {
            Ok(kwk) => unwrap_key(
                &Key::from_bytes(kwk),
                &slot.wrapped_root,
                &aad_slot(&slot.id, cfg.root_version),
            )
            .ok(),
            Err(ShareError::TooFew) => None,
            Err(e) => return Err(ApiError::invalid("share", e.to_string())),
        };
        self.finish_attempt(root, "shamir", who)
    }

    fn finish_attempt(
        &self,
        root: Option<Key>,
        kind: &str,
        who: &Actor,
    ) -> Result<Status, ApiError> {
        let Some(root) = root else {
            self.backoff.failure(Instant::now());
            self.audit_only(who.event("barrier.unseal", "denied", format!("slot={kind}")))?;
            return Err(ApiError::Forbidden(
                "unseal failed: wrong passphrase or shares".to_owned(),
            ));
        };
        let unsealed = self.load_keys(root)?;
        self.backoff.success();
        self.audit_only(who.event("barrier.unseal", "ok", format!("slot={kind}")))?;
        self.state
            .store(Arc::new(State::Unsealed(Arc::new(unsealed))));
        tracing::info!(slot = kind, "metacrypt unsealed");
        self.status()
    }

    /// Unwraps the MEK and every DEK under `root`.
    fn load_keys(&self, root: Key) -> Result<Unsealed, ApiError> {
        let rx = ReadTx::begin(&self.store)?;
        let cfg = rx
            .get(BARRIER_SEAL, SEAL_KEY)?
            .ok_or_else(|| ApiError::internal("no seal config"))?;
        let mek_rec = rx
            .get(BARRIER_MEK, MEK_KEY)?
            .ok_or_else(|| ApiError::internal("no MEK row"))?;
        let mek = unwrap_key(
            &root,
            &mek_rec.wrapped,
            &aad_mek(mek_rec.version, cfg.root_version),
        )
        .map_err(key_err)?;
        let mut rings: BTreeMap<u64, DekRing> = BTreeMap::new();
        for (k, rec) in rx.entries(BARRIER_KEYS)? {
            let (Ok(m), Ok(v)) = (
                <[u8; 8]>::try_from(&k[..8.min(k.len())]),
                <[u8; 4]>::try_from(&k[8.min(k.len())..]),
            ) else {
                return Err(ApiError::internal("bad barrier_keys row key"));
            };
            let (mount, version) = (u64::from_be_bytes(m), u32::from_be_bytes(v));
            if rec.mek_version != mek_rec.version {
                return Err(ApiError::internal("a DEK is wrapped under a retired MEK"));
            }
            let dek = unwrap_key(
                &mek,
                &rec.wrapped,
                &aad_dek(mount, version, rec.mek_version),
            )
            .map_err(key_err)?;
            let ring = rings.entry(mount).or_insert_with(|| DekRing {
                current: 0,
                keys: BTreeMap::new(),
            });
            ring.current = ring.current.max(version);
            ring.keys
                .insert(version, (dek.aead().map_err(key_err)?, dek));
        }
        Ok(Unsealed {
            root_version: cfg.root_version,
            mek_version: mek_rec.version,
            root,
            mek,
            rings,
            epoch: next_epoch(),
        })
    }

    /// Rotates the MEK: one transaction creates MEK v+1, rewraps every DEK
    /// row under it and writes the audit row; DEK values do not change.
    pub(crate) fn rotate_mek(&self, who: &Actor) -> Result<u32, ApiError> {
        let _changing = self.key_lock();
        let current = self.unsealed()?;
        let tx = WriteTx::begin(&self.store)?;
        let rec = tx
            .get(BARRIER_MEK, MEK_KEY)?
            .ok_or_else(|| ApiError::internal("no MEK row"))?;
        if rec.version != current.mek_version {
            return Err(ApiError::FailedPrecondition(
                "the MEK changed; retry".to_owned(),
            ));
        }
        let version = rec.version + 1;
        let mek = Key::random().map_err(key_err)?;
        rootkey::rewrap_deks(&tx, &current.mek, &mek, version)?;
        rootkey::put_mek(&tx, &current.root, &mek, version, current.root_version)?;
        tx.audit(who.event("barrier.rotate_mek", "ok", format!("version={version}")))?;
        tx.commit()?;
        let mut next = current.copy()?;
        next.mek_version = version;
        next.mek = mek;
        self.swap_unsealed(&current, next);
        Ok(version)
    }

    /// Seals: swaps the state to Sealed (dropping this reference to the keys),
    /// discards Shamir progress, audits. Idempotent.
    pub(crate) async fn seal(&self, who: &Actor) -> Result<Status, ApiError> {
        let was = match &**self.state.load() {
            State::Uninitialized => {
                return Err(ApiError::FailedPrecondition("not initialized".to_owned()));
            }
            State::Sealed => false,
            State::Unsealed(_) => true,
        };
        if was {
            self.audit_only(who.event("barrier.seal", "ok", String::new()))?;
            let old = self.state.swap(Arc::new(State::Sealed));
            let keys = match &*old {
                State::Unsealed(u) => Some(Arc::downgrade(u)),
                State::Sealed | State::Uninitialized => None,
            };
            drop(old);
            // In-flight operations hold their own reference: wait (bounded)
            // for them to finish, so the keys are gone when seal answers.
            let deadline = Instant::now() + SEAL_WAIT;
            while keys.as_ref().is_some_and(|k| k.strong_count() > 0) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if keys.is_some_and(|k| k.strong_count() > 0) {
                tracing::warn!("metacrypt sealed; an operation still holds the keys");
            } else {
                tracing::info!("metacrypt sealed");
            }
        }
        *self.progress() = Progress::default();
        self.status()
    }
}

/// Every `barrier_keys` row, read inside the write transaction.
fn dek_rows(tx: &WriteTx) -> Result<Vec<(Vec<u8>, DekRecord)>, ApiError> {
    use redb::ReadableTable;
    let t = tx
        .raw()
        .open_table(BARRIER_KEYS.def())
        .map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(ApiError::internal)? {
        let (k, v) = row.map_err(ApiError::internal)?;
        out.push((
            k.value().to_vec(),
            serde_json::from_slice(v.value()).map_err(ApiError::internal)?,
        ));
    }
    Ok(out)
}

fn split_dek_key(k: &[u8]) -> Result<(u64, u32), ApiError> {
    let m: [u8; 8] = k
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ApiError::internal("bad barrier_keys key"))?;
    let v: [u8; 4] = k
        .get(8..12)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ApiError::internal("bad barrier_keys key"))?;
    Ok((u64::from_be_bytes(m), u32::from_be_bytes(v)))
}

/// A passphrase for `init`: at least 12 characters, at most 1 KiB.
pub(crate) fn check_passphrase(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(ApiError::invalid("passphrase", "at least 12 characters"));
    }
    if p.len() > MAX_PASSPHRASE_BYTES {
        return Err(ApiError::invalid("passphrase", "at most 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
