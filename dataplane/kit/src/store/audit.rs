//! The audit log every service keeps: one `audit` table of [`AuditEvent`]s
//! keyed by a big-endian sequence number, appended in the same write
//! transaction as the change it records (so there is never a change without
//! its audit row, nor a row for a change that was rolled back).

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::json::{JsonTable, ReadTx, WriteTx};

/// The audit table of a service's store (create it in a migration with
/// [`super::json::create_tables`]).
pub const AUDIT: JsonTable<AuditEvent> = JsonTable::new("audit");

/// One audited action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned on append: 1, 2, 3… in commit order.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// The acting account id (empty for anonymous).
    pub actor: String,
    /// What was done, `noun.verb` (`account.create`, `login`).
    pub action: String,
    /// What it was done to.
    pub target: String,
    pub source_ip: String,
    /// `ok`, `denied`, `failed`…
    pub result: String,
    pub detail: String,
}

impl WriteTx {
    /// Appends `event` with the next sequence number; returns that number.
    pub fn audit(&self, mut event: AuditEvent) -> Result<u64, StoreError> {
        use redb::ReadableTable;
        let mut t = self
            .raw()
            .open_table(AUDIT.def())
            .map_err(StoreError::other)?;
        let next = match t.last().map_err(StoreError::other)? {
            Some((k, _)) => {
                let b: [u8; 8] = k
                    .value()
                    .try_into()
                    .map_err(|_| StoreError::other("bad audit key"))?;
                u64::from_be_bytes(b) + 1
            }
            None => 1,
        };
        event.seq = next;
        let bytes = serde_json::to_vec(&event).map_err(StoreError::other)?;
        t.insert(next.to_be_bytes().as_slice(), bytes.as_slice())
            .map_err(StoreError::other)?;
        Ok(next)
    }
}

impl ReadTx {
    /// Up to `limit` events older than sequence `before` (newest first when
    /// `before` is `None`).
    pub fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let key = before.map(u64::to_be_bytes);
        self.last(AUDIT, key.as_ref().map(<[u8; 8]>::as_slice), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::json::create_tables;
    use crate::store::{Migration, Schema, Store};

    fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        create_tables(txn, &[AUDIT.def()])
    }
    const SCHEMA: Schema = Schema {
        name: "audit-test",
        migrations: &[Migration {
            to_version: 1,
            description: "audit",
            apply: create,
        }],
    };

    #[test]
    fn appends_in_order_and_only_with_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("a.redb"), &SCHEMA).expect("open");
        for i in 0..3 {
            let tx = WriteTx::begin(&store).expect("begin");
            let seq = tx
                .audit(AuditEvent {
                    action: format!("a{i}"),
                    ..AuditEvent::default()
                })
                .expect("audit");
            assert_eq!(seq, i + 1);
            tx.commit().expect("commit");
        }
        let tx = WriteTx::begin(&store).expect("begin");
        tx.audit(AuditEvent::default()).expect("audit");
        drop(tx); // rolled back: no row
        let r = ReadTx::begin(&store).expect("read");
        let page = r.audit_page(None, 10).expect("page");
        let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 2, 1]);
        let older = r.audit_page(Some(3), 1).expect("page");
        assert_eq!(older.first().map(|e| e.action.as_str()), Some("a1"));
    }
}
