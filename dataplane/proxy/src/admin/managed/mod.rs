//! Managed certificates: issued for a key made here, by Metacrypt's PKI
//! (`SignCsr`) or by any ACME CA (`acme`), and renewed at two thirds of
//! their lifetime (docs/design/proxy.md §Managed certificates).
//!
//! Invariants: a certificate is replaced only by a complete, checked
//! successor (`install_certificate`), so a failed attempt leaves the old one
//! serving; attempts run one at a time (`attempting`); specs are committed
//! to redb before they are answered, the status lives in memory.

mod acme;
mod issue;
mod metrics;
mod source;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mc_kit::api::ApiError;
use mc_kit::store::json::{ReadTx, WriteTx};

use super::state::ProxyState;
use super::store as db;
use crate::tls::LoadedCertificate;

pub use acme::{AcmeClient, AcmeFuture, AcmeIssued, AcmeOrder, AcmeSection};
pub(crate) use acme::{AcmeSpec, StoredAccount};
pub(crate) use issue::ManagedSpec;
pub use metrics::ManagedCollector;
pub use source::MetacryptSource;

/// Makes a fresh private key and a CSR for the names, signed by it:
/// (PKCS#8 PEM, zeroized on drop; CSR PEM). The data-plane host supplies it
/// (`mc-dataplane`'s `csr`), so the key is made on this host while the
/// engine links no certificate generator (ARCHITECTURE.md, mc-kit).
pub type CsrMaker = fn(&[String]) -> Result<(zeroize::Zeroizing<String>, String), String>;

/// An attempt's deadline, Metacrypt's answer and the install included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// An ACME attempt's: the CA validates challenges and may ask to poll.
const ACME_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);
/// The loop's longest sleep (a clock step never stalls renewals longer).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The in-memory status of one managed certificate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    pub(crate) next_attempt_unix: i64,
    pub(crate) failures: u32,
    pub(crate) failures_total: u64,
    pub(crate) last_error: String,
    pub(crate) last_success_unix: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) spec: ManagedSpec,
    pub(crate) status: Status,
}

/// Every managed certificate, the source, and the renewal loop's wake-up.
#[derive(Debug, Default)]
pub(crate) struct Managed {
    entries: Mutex<BTreeMap<String, Entry>>,
    source: Option<MetacryptSource>,
    acme: AcmeSection,
    wake: tokio::sync::Notify,
    attempting: tokio::sync::Mutex<()>,
    maker: OnceLock<CsrMaker>,
    client: OnceLock<Arc<dyn AcmeClient>>,
}

impl std::fmt::Debug for dyn AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcmeClient")
    }
}

impl Managed {
    /// The stored specs; each is due when its installed certificate reaches
    /// two thirds of its life, or at once when none is installed.
    pub(crate) fn load(
        store: &mc_kit::store::Store,
        source: Option<MetacryptSource>,
        acme: AcmeSection,
        certificates: &std::collections::HashMap<String, LoadedCertificate>,
    ) -> Result<Self, ApiError> {
        let specs = ReadTx::begin(store)?.all(db::MANAGED)?;
        let now = mc_kit::clock::unix_now();
        let mut entries = BTreeMap::new();
        for spec in specs {
            let next = certificates.get(&spec.name).map_or(now, |c| {
                issue::renew_at(c.stored.info.not_before_unix, c.stored.info.not_after_unix)
            });
            let status = Status {
                next_attempt_unix: next,
                ..Status::default()
            };
            entries.insert(spec.name.clone(), Entry { spec, status });
        }
        Ok(Self {
            entries: Mutex::new(entries),
            source,
            acme,
            ..Self::default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_managed(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.lock().values().cloned().collect()
    }

    fn get(&self, name: &str) -> Option<Entry> {
        self.lock().get(name).cloned()
    }

    fn record(&self, name: &str, outcome: Result<i64, String>) {
        let now = mc_kit::clock::unix_now();
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(name) else {
            return;
        };
        let s = &mut e.status;
        match outcome {
            Ok(next) => {
                s.failures = 0;
                s.last_error.clear();
                s.last_success_unix = now;
                s.next_attempt_unix = next;
            }
            Err(error) => {
                s.failures = s.failures.saturating_add(1);
                s.failures_total = s.failures_total.saturating_add(1);
                s.last_error = error;
                let wait = i64::try_from(issue::backoff(s.failures).as_secs()).unwrap_or(300);
                s.next_attempt_unix = now.saturating_add(wait);
            }
        }
    }
}

/// Refused with the reason when `name` is managed: its certificate changes
/// only through renewals.
pub(super) fn refuse_managed(state: &ProxyState, name: &str) -> Result<(), ApiError> {
    if state.managed.is_managed(name) {
        return Err(ApiError::FailedPrecondition(format!(
            "certificate `{name}` is managed (renewed from Metacrypt); remove it with `mcctl proxy certs managed remove {name}` first"
        )));
    }
    Ok(())
}

impl ProxyState {
    /// Stores (or replaces) a managed certificate's spec, then makes an attempt.
    /// `eab_hmac` is the ACME EAB HMAC key in clear (sealed into the spec here).
    pub(crate) async fn put_managed(
        self: &Arc<Self>,
        mut spec: ManagedSpec,
        eab_hmac: zeroize::Zeroizing<String>,
    ) -> Result<Entry, ApiError> {
        spec.check()?;
        if let Some(a) = spec.acme.as_mut() {
            acme::check_hmac(&a.eab_kid, &eab_hmac)?;
            if !eab_hmac.is_empty() {
                a.eab_hmac_sealed = self
                    .sealer
                    .seal(&acme::eab_seal_name(&spec.name), eab_hmac.as_bytes())
                    .map_err(ApiError::Internal)?;
            }
        } else if !eab_hmac.is_empty() {
            return Err(
                mc_kit::api::Invalid::new("eab_hmac", "only for an ACME certificate").into(),
            );
        } else if self.managed.source.is_none() {
            return Err(ApiError::FailedPrecondition(
                "managed certificates need [proxy.metacrypt] in the data plane's config".into(),
            ));
        }
        {
            let inner = self.lock();
            if let Some(c) = inner.certificates.get(&spec.name) {
                self.refuse_config_owned(&format!("certificate `{}`", spec.name), c.stored.origin)?;
            }
            let tx = WriteTx::begin(&self.store)?;
            tx.put(db::MANAGED, spec.name.as_bytes(), &spec)?;
            tx.commit()?;
            let mut entries = self.managed.lock();
            let status = entries
                .remove(&spec.name)
                .map(|e| e.status)
                .unwrap_or_default();
            entries.insert(
                spec.name.clone(),
                Entry {
                    spec: spec.clone(),
                    status,
                },
            );
        }
        self.renew_managed(&spec.name).await
    }

    /// Stops managing `name`; its installed certificate stays, unmanaged.
    pub(crate) fn remove_managed(&self, name: &str) -> Result<bool, ApiError> {
        let _inner = self.lock();
        if !self.managed.is_managed(name) {
            return Ok(false);
        }
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::MANAGED.def(), name.as_bytes())?;
        tx.commit()?;
        self.managed.lock().remove(name);
        Ok(true)
    }

    /// One attempt for `name` now; answers its status afterwards.
    pub(crate) async fn renew_managed(self: &Arc<Self>, name: &str) -> Result<Entry, ApiError> {
        let Some(entry) = self.managed.get(name) else {
            return Err(ApiError::NotFound(format!(
                "no managed certificate `{name}`"
            )));
        };
        let outcome = {
            let _one = self.managed.attempting.lock().await;
            let limit = if entry.spec.acme.is_some() {
                ACME_ATTEMPT_TIMEOUT
            } else {
                ATTEMPT_TIMEOUT
            };
            tokio::time::timeout(limit, self.attempt(&entry.spec))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
        };
        if let Err(e) = &outcome {
            tracing::warn!(certificate = %name, error = %e, "managed certificate: attempt failed; the installed certificate stays");
        }
        self.managed.record(name, outcome);
        self.managed.wake.notify_one();
        self.managed
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("no managed certificate `{name}`")))
    }

    /// Key, CSR, Metacrypt or the ACME CA, install. Answers when the next renewal is due.
    async fn attempt(self: &Arc<Self>, spec: &ManagedSpec) -> Result<i64, String> {
        let maker = self
            .managed
            .maker
            .get()
            .ok_or("managed certificates are not started on this host")?;
        let (key_pem, csr) = maker(&spec.dns_names)?;
        let chain = match &spec.acme {
            Some(a) => self.acme_order(spec, a, &csr).await?,
            None => {
                let source = self
                    .managed
                    .source
                    .as_ref()
                    .ok_or("[proxy.metacrypt] is not configured")?;
                let signed = source.sign(spec, &csr).await?;
                issue::served_chain(&signed.certificate, &signed.ca_chain)?
            }
        };
        let state = self.clone();
        let name = spec.name.clone();
        let stored =
            tokio::task::spawn_blocking(move || state.install_certificate(&name, &chain, &key_pem))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("installing: {e}"))?;
        tracing::info!(certificate = %spec.name, not_after = stored.info.not_after_unix, source = %spec.source(), "managed certificate installed");
        Ok(issue::renew_at(
            stored.info.not_before_unix,
            stored.info.not_after_unix,
        ))
    }
}

/// Starts the renewal loop on the current (admin) runtime with `maker`
/// making keys and CSRs and `client` speaking ACME. Without it, managed certificates are stored but
/// every attempt fails, saying so.
pub fn start(
    state: &Arc<ProxyState>,
    maker: CsrMaker,
    client: Arc<dyn AcmeClient>,
) -> tokio::task::JoinHandle<()> {
    let _ = state.managed.maker.set(maker);
    let _ = state.managed.client.set(client);
    tokio::spawn(run(state.clone()))
}

/// The renewal loop: sleeps until the earliest due attempt (or a change),
/// then makes the due ones. Runs until aborted.
async fn run(state: Arc<ProxyState>) {
    loop {
        let now = mc_kit::clock::unix_now();
        let entries = state.managed.entries();
        for e in entries.iter().filter(|e| e.status.next_attempt_unix <= now) {
            let _ = state.renew_managed(&e.spec.name).await;
        }
        let next = state
            .managed
            .entries()
            .iter()
            .map(|e| e.status.next_attempt_unix)
            .min();
        let wait = next.map_or(MAX_SLEEP, |t| {
            Duration::from_secs(
                u64::try_from(t.saturating_sub(mc_kit::clock::unix_now())).unwrap_or(0),
            )
            .clamp(Duration::from_millis(200), MAX_SLEEP)
        });
        tokio::select! {
            () = state.managed.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests;
