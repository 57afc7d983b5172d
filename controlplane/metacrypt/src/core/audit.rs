//! `sys/audit`: Metacrypt's audit rows (every change, unseal attempt and
//! background destroy or rotation), queried newest first as MCIAS's are:
//! by time (`since` ≤ at < `until`, unix seconds), `actor` (account id,
//! exact), `action` (prefix, `kv.` or `barrier.unseal`), `limit` (1 to
//! 1000, default 100) and a `before` cursor (a sequence number: the page
//! holds older rows; `next_before` continues it, 0 when nothing is left).
//!
//! Invariants: admin-only (the map) and, like every `sys` route but
//! status, init and unseal, answered only while unsealed; one query reads
//! at most [`SCAN`] rows, so a filter matching nothing costs a bounded
//! scan (`next_before` then says where to go on); bad parameters are
//! refused by name before anything is read.

use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::ReadTx;
use serde::{Deserialize, Serialize};

use super::Metacrypt;
use crate::error::CryptError;

/// Rows one query reads at most.
pub(crate) const SCAN: usize = 100_000;
/// Rows read per store page while scanning.
const CHUNK: usize = 1000;
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Longest `actor` or `action` filter.
const MAX_FILTER: usize = 256;

/// `GET sys/audit?…` (all optional; 0 and "" mean "not given").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub since: i64,
    #[serde(default)]
    pub until: i64,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub before: u64,
    #[serde(default)]
    pub limit: u32,
}

/// One page, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next page; 0 when the log is exhausted.
    pub next_before: u64,
}

impl AuditQuery {
    fn check(&self) -> Result<usize, CryptError> {
        if self.since < 0 {
            return Err(CryptError::invalid("since", "unix seconds, not negative"));
        }
        if self.until < 0 {
            return Err(CryptError::invalid("until", "unix seconds, not negative"));
        }
        if self.until > 0 && self.since >= self.until {
            return Err(CryptError::invalid("until", "must be after since"));
        }
        if self.actor.len() > MAX_FILTER {
            return Err(CryptError::invalid("actor", "at most 256 bytes"));
        }
        if self.action.len() > MAX_FILTER {
            return Err(CryptError::invalid("action", "at most 256 bytes"));
        }
        match self.limit {
            0 => Ok(DEFAULT_LIMIT as usize),
            n if n > MAX_LIMIT => Err(CryptError::invalid("limit", "1 to 1000")),
            n => Ok(n as usize),
        }
    }

    fn matches(&self, e: &AuditEvent) -> bool {
        (self.until == 0 || e.at < self.until)
            && (self.actor.is_empty() || e.actor == self.actor)
            && (self.action.is_empty() || e.action.starts_with(&self.action))
    }
}

impl Metacrypt {
    /// A page of audit rows matching `q`, newest first.
    pub fn audit_query(&self, q: &AuditQuery) -> Result<AuditPage, CryptError> {
        self.barrier.unsealed()?;
        let limit = q.check()?;
        let rx = ReadTx::begin(&self.store)?;
        let mut events = Vec::new();
        let mut before = (q.before > 0).then_some(q.before);
        let mut scanned = 0;
        loop {
            let page = rx.audit_page(before, CHUNK.min(SCAN - scanned))?;
            let Some(last) = page.last() else {
                return Ok(AuditPage {
                    events,
                    next_before: 0,
                });
            };
            before = Some(last.seq);
            scanned += page.len();
            for e in page {
                // Rows are in commit order: older than `since`, nothing more matches.
                if e.at < q.since {
                    return Ok(AuditPage {
                        events,
                        next_before: 0,
                    });
                }
                let seq = e.seq;
                if q.matches(&e) {
                    events.push(e);
                    if events.len() == limit {
                        return Ok(AuditPage {
                            events,
                            next_before: seq,
                        });
                    }
                }
            }
            if scanned >= SCAN {
                return Ok(AuditPage {
                    events,
                    next_before: before.unwrap_or(0),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::MountInput;

    #[tokio::test]
    async fn audit_filters_pages_and_refuses_bad_parameters_by_name() {
        let (_d, m, admin) = crate::testing::unsealed().await;
        for name in ["a", "b", "c"] {
            m.create_mount(
                &admin,
                MountInput {
                    name: name.to_owned(),
                    kind: "kv".to_owned(),
                    description: String::new(),
                    config: None,
                },
            )
            .expect("mount");
        }
        let all = m.audit_query(&AuditQuery::default()).expect("all");
        assert!(all.events.len() >= 4, "{all:?}");
        assert_eq!(all.next_before, 0);
        assert!(
            all.events.windows(2).all(|w| w[0].seq > w[1].seq),
            "newest first"
        );
        // By action prefix, paged two then one.
        let q = AuditQuery {
            action: "mount.".to_owned(),
            limit: 2,
            ..AuditQuery::default()
        };
        let first = m.audit_query(&q).expect("page 1");
        assert_eq!(first.events.len(), 2, "{first:?}");
        assert!(first.next_before > 0);
        let second = m
            .audit_query(&AuditQuery {
                before: first.next_before,
                ..q.clone()
            })
            .expect("page 2");
        assert_eq!(second.events.len(), 1, "{second:?}");
        assert!(second.events[0].seq < first.events[1].seq);
        // By actor and time.
        let actor = admin.actor();
        let mine = m
            .audit_query(&AuditQuery {
                actor: actor.clone(),
                ..AuditQuery::default()
            })
            .expect("actor");
        assert!(!mine.events.is_empty() && mine.events.iter().all(|e| e.actor == actor));
        let none = m
            .audit_query(&AuditQuery {
                actor: "nobody".to_owned(),
                ..AuditQuery::default()
            })
            .expect("nobody");
        assert!(none.events.is_empty());
        let future = m
            .audit_query(&AuditQuery {
                since: mc_kit::clock::unix_now() + 3600,
                ..AuditQuery::default()
            })
            .expect("future");
        assert!(future.events.is_empty());
        // Bad parameters name the field.
        for (q, field) in [
            (
                AuditQuery {
                    limit: 1001,
                    ..AuditQuery::default()
                },
                "limit",
            ),
            (
                AuditQuery {
                    since: -1,
                    ..AuditQuery::default()
                },
                "since",
            ),
            (
                AuditQuery {
                    since: 10,
                    until: 5,
                    ..AuditQuery::default()
                },
                "until",
            ),
            (
                AuditQuery {
                    actor: "x".repeat(300),
                    ..AuditQuery::default()
                },
                "actor",
            ),
        ] {
            let e = m.audit_query(&q).expect_err("refused");
            assert!(e.to_string().starts_with(field), "{e}");
        }
        // Sealed: the one sealed answer.
        m.seal(&admin).await.expect("seal");
        assert_eq!(
            m.audit_query(&AuditQuery::default())
                .expect_err("sealed")
                .http_status(),
            503
        );
    }
}
