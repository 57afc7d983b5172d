//! Typed JSON rows over the kit's byte tables, and transactions that speak
//! them: every service stores `serde` values the same way, and every redb
//! error becomes a [`StoreError`] in one place instead of at each call.
//!
//! ```ignore
//! const ACCOUNTS: JsonTable<Account> = JsonTable::new("accounts");
//! let tx = WriteTx::begin(&store)?;
//! tx.put(ACCOUNTS, id.as_bytes(), &account)?;
//! tx.audit(AuditEvent::new(actor, "account.create", id))?;
//! tx.commit()?;                       // the change and its audit row, or neither
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError, Table};

/// A table whose values are `T` encoded as JSON, keyed by bytes.
pub struct JsonTable<T> {
    def: Table,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for JsonTable<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for JsonTable<T> {}

impl<T> JsonTable<T> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            def: Table::new(name),
            _value: PhantomData,
        }
    }

    /// The underlying byte table (for migrations and snapshots).
    pub const fn def(&self) -> Table {
        self.def
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::other)
}

/// Creates `tables` (a migration step that only adds tables).
pub fn create_tables(txn: &redb::WriteTransaction, tables: &[Table]) -> Result<(), StoreError> {
    for t in tables {
        txn.open_table(*t).map_err(StoreError::other)?;
    }
    Ok(())
}

/// A consistent read view of a store.
pub struct ReadTx(redb::ReadTransaction);

impl ReadTx {
    pub fn begin(store: &Store) -> Result<Self, StoreError> {
        store.db().begin_read().map(Self).map_err(StoreError::other)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: JsonTable<T>,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let v = t.get(key).map_err(StoreError::other)?;
        v.map(|v| decode(v.value())).transpose()
    }

    /// Every row, in key order.
    pub fn all<T: DeserializeOwned>(&self, table: JsonTable<T>) -> Result<Vec<T>, StoreError> {
        self.entries(table)
            .map(|rows| rows.into_iter().map(|(_, v)| v).collect())
    }

    /// Every row with its key, in key order.
    pub fn entries<T: DeserializeOwned>(
        &self,
        table: JsonTable<T>,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::other)? {
            let (k, v) = row.map_err(StoreError::other)?;
            out.push((k.value().to_vec(), decode(v.value())?));
        }
        Ok(out)
    }

    /// Up to `limit` rows with keys below `before` (all when `None`), highest key first.
    pub fn last<T: DeserializeOwned>(
        &self,
        table: JsonTable<T>,
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let rows = match before {
            Some(b) => t.range::<&[u8]>(..b).map_err(StoreError::other)?,
            None => t.iter().map_err(StoreError::other)?,
        };
        let mut out = Vec::new();
        for row in rows.rev().take(limit) {
            let (_, v) = row.map_err(StoreError::other)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Raw bytes (sealed values, indexes), as [`WriteTx::get_raw`].
    pub fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.0.open_table(table).map_err(StoreError::other)?;
        let v = t.get(key).map_err(StoreError::other)?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    pub fn len<T>(&self, table: JsonTable<T>) -> Result<u64, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        t.len().map_err(StoreError::other)
    }
}

/// A write transaction with typed helpers. Nothing is visible to readers
/// until [`WriteTx::commit`], which returns once the change is durable;
/// dropping it uncommitted discards every change. A commit counts in
/// [`Store::commits`].
pub struct WriteTx(redb::WriteTransaction, Arc<AtomicU64>);

impl WriteTx {
    pub fn begin(store: &Store) -> Result<Self, StoreError> {
        store
            .db()
            .begin_write()
            .map(|t| Self(t, store.commits.clone()))
            .map_err(StoreError::other)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: JsonTable<T>,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let v = t.get(key).map_err(StoreError::other)?;
        v.map(|v| decode(v.value())).transpose()
    }

    /// Every row, in key order (inside this transaction, so a check and the
    /// write that depends on it see the same data).
    pub fn all<T: DeserializeOwned>(&self, table: JsonTable<T>) -> Result<Vec<T>, StoreError> {
        let t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::other)? {
            let (_, v) = row.map_err(StoreError::other)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    pub fn put<T: Serialize>(
        &self,
        table: JsonTable<T>,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(StoreError::other)?;
        self.put_raw(table.def, key, &bytes)
    }

    /// Stores raw bytes (sealed values, indexes).
    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut t = self.0.open_table(table).map_err(StoreError::other)?;
        t.insert(key, value).map_err(StoreError::other)?;
        Ok(())
    }

    pub fn get_raw(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.0.open_table(table).map_err(StoreError::other)?;
        let v = t.get(key).map_err(StoreError::other)?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Removes a row; `true` when there was one.
    pub fn delete(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let mut t = self.0.open_table(table).map_err(StoreError::other)?;
        let old = t.remove(key).map_err(StoreError::other)?;
        Ok(old.is_some())
    }

    /// Removes every row of `table` for which `drop` answers true; returns how many.
    pub fn delete_where<T: DeserializeOwned>(
        &self,
        table: JsonTable<T>,
        mut drop: impl FnMut(&[u8], &T) -> bool,
    ) -> Result<u64, StoreError> {
        let mut t = self.0.open_table(table.def).map_err(StoreError::other)?;
        let mut doomed = Vec::new();
        for row in t.iter().map_err(StoreError::other)? {
            let (k, v) = row.map_err(StoreError::other)?;
            if drop(k.value(), &decode::<T>(v.value())?) {
                doomed.push(k.value().to_vec());
            }
        }
        for k in &doomed {
            t.remove(k.as_slice()).map_err(StoreError::other)?;
        }
        Ok(doomed.len() as u64)
    }

    /// The raw transaction, for what the helpers do not cover.
    pub fn raw(&self) -> &redb::WriteTransaction {
        &self.0
    }

    pub fn commit(self) -> Result<(), StoreError> {
        self.0.commit().map_err(StoreError::other)?;
        self.1.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Migration, Schema};

    const THINGS: JsonTable<(String, u32)> = JsonTable::new("things");

    fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        create_tables(txn, &[THINGS.def()])
    }
    const SCHEMA: Schema = Schema {
        name: "json-test",
        migrations: &[Migration {
            to_version: 1,
            description: "things",
            apply: create,
        }],
    };

    #[test]
    fn typed_rows_round_trip_and_uncommitted_changes_vanish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.redb"), &SCHEMA).expect("open");
        let tx = WriteTx::begin(&store).expect("begin");
        for i in 0..5_u32 {
            tx.put(THINGS, &i.to_be_bytes(), &(format!("n{i}"), i))
                .expect("put");
        }
        tx.commit().expect("commit");
        let tx = WriteTx::begin(&store).expect("begin");
        tx.put(THINGS, &9_u32.to_be_bytes(), &("lost".into(), 9))
            .expect("put");
        drop(tx);
        let r = ReadTx::begin(&store).expect("read");
        assert_eq!(r.len(THINGS).expect("len"), 5);
        assert_eq!(
            r.get(THINGS, &2_u32.to_be_bytes()).expect("get"),
            Some(("n2".into(), 2))
        );
        let newest: Vec<u32> = r
            .last(THINGS, Some(&4_u32.to_be_bytes()), 2)
            .expect("last")
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        assert_eq!(newest, vec![3, 2]);
        let tx = WriteTx::begin(&store).expect("begin");
        assert_eq!(
            tx.delete_where(THINGS, |_, (_, i)| i % 2 == 0)
                .expect("delete"),
            3
        );
        assert!(
            tx.delete(THINGS.def(), &1_u32.to_be_bytes())
                .expect("delete")
        );
        tx.commit().expect("commit");
        let r = ReadTx::begin(&store).expect("read");
        assert_eq!(r.all(THINGS).expect("all"), vec![("n3".to_owned(), 3)]);
    }
}
