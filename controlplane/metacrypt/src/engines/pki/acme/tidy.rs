//! Tidy of expired ACME rows (the `pki acme tidy` task, core/tasks.rs).
//!
//! What goes, per mount:
//! - an order past its `expires` that is not `valid`, or a `valid` one
//!   whose certificate has expired (until then the ordering account may
//!   still revoke the certificate, which looks the order up);
//! - an authorization past its `expires` whose order is gone or goes now;
//! - an EAB key that is used (its account keeps its id) or past `expires`.
//!
//! Nonces are in memory (`nonce.rs`) and expire there; challenges live
//! inside their authorization. Accounts are never tidied.
//!
//! Invariants: one run deletes at most `limit` rows, in one transaction;
//! a live row (an order still in use, an authorization of a kept order,
//! an unused unexpired EAB key) is never deleted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::model::{Authz, EabKey, Order, kind};
use super::problem::Problem;
use super::rows::{begin, commit, delete, scan};
use crate::core::run::Authorized;

/// Rows removed since the process started: orders, authorizations, EAB keys.
static TIDIED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// The removed-row counters, labelled by kind, for `/metrics`.
pub(crate) fn tidied() -> [(&'static str, u64); 3] {
    [
        ("order", TIDIED[0].load(Relaxed)),
        ("authorization", TIDIED[1].load(Relaxed)),
        ("eab", TIDIED[2].load(Relaxed)),
    ]
}

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tidied {
    pub(crate) orders: usize,
    pub(crate) authzs: usize,
    pub(crate) eab_keys: usize,
}

impl Tidied {
    pub(crate) fn total(&self) -> usize {
        self.orders + self.authzs + self.eab_keys
    }
}

/// When the order's certificate expires (0 when there is none or it does not parse).
fn certificate_not_after(o: &Order) -> i64 {
    let Some(chain) = &o.chain else {
        return 0;
    };
    x509_parser::pem::parse_x509_pem(chain.as_bytes())
        .ok()
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .ok()
                .map(|c| c.validity().not_after.timestamp())
        })
        .unwrap_or(0)
}

fn order_is_done(o: &Order, now: i64) -> bool {
    if o.expires >= now {
        return false;
    }
    o.status != "valid" || certificate_not_after(o) < now
}

/// Removes the mount's expired ACME rows as of `now`, at most `limit`.
pub(crate) fn tidy(a: &Authorized<'_>, now: i64, limit: usize) -> Result<Tidied, Problem> {
    let orders: Vec<Order> = scan(a, kind::ORDER)?;
    let authzs: Vec<Authz> = scan(a, kind::AUTHZ)?;
    let eabs: Vec<(String, EabKey)> = scan_eab(a)?;
    let kept: BTreeSet<&str> = orders
        .iter()
        .filter(|o| !order_is_done(o, now))
        .map(|o| o.id.as_str())
        .collect();
    let mut budget = limit;
    let mut take = |n: usize| {
        let n = n.min(budget);
        budget -= n;
        n
    };
    let gone_orders: Vec<&str> = orders
        .iter()
        .filter(|o| !kept.contains(o.id.as_str()))
        .map(|o| o.id.as_str())
        .collect();
    let gone_orders = &gone_orders[..take(gone_orders.len())];
    let gone_authzs: Vec<&str> = authzs
        .iter()
        .filter(|z| z.expires < now && !kept.contains(z.order.as_str()))
        .map(|z| z.id.as_str())
        .collect();
    let gone_authzs = &gone_authzs[..take(gone_authzs.len())];
    let gone_eabs: Vec<&str> = eabs
        .iter()
        .filter(|(_, e)| e.account.is_some() || e.expires < now)
        .map(|(id, _)| id.as_str())
        .collect();
    let gone_eabs = &gone_eabs[..take(gone_eabs.len())];
    let done = Tidied {
        orders: gone_orders.len(),
        authzs: gone_authzs.len(),
        eab_keys: gone_eabs.len(),
    };
    if done.total() == 0 {
        return Ok(done);
    }
    let tx = begin(a)?;
    for (k, ids) in [
        (kind::ORDER, gone_orders),
        (kind::AUTHZ, gone_authzs),
        (kind::EAB, gone_eabs),
    ] {
        for id in ids {
            delete(a, &tx, k, id)?;
        }
    }
    commit(tx)?;
    for (i, n) in [done.orders, done.authzs, done.eab_keys]
        .into_iter()
        .enumerate()
    {
        if let Some(c) = TIDIED.get(i) {
            c.fetch_add(n as u64, Relaxed);
        }
    }
    Ok(done)
}

/// EAB rows with their ids (the key id is the row's id, not in the row).
fn scan_eab(a: &Authorized<'_>) -> Result<Vec<(String, EabKey)>, Problem> {
    super::rows::scan_keyed(a, kind::EAB)
}
