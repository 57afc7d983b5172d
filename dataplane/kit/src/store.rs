//! Storage: one redb file per service, versioned schema, snapshots and restore.
//!
//! Invariants (enforced here, relied on by every service):
//! - the file and its directory are created owner-only (0600 / 0700) and a
//!   more permissive existing file is tightened on open;
//! - every table is `&[u8] -> &[u8]` ([`Table`]); services encode their own
//!   values. This is what lets [`Store::snapshot_to`] copy any service's store
//!   without knowing its types;
//! - the `mc_meta` table holds the schema name and version; [`Store::open`]
//!   runs the missing migrations, in order, each in its own write transaction
//!   that also records the new version, so a crash between migrations resumes
//!   at the right step;
//! - a commit returns only once it is durable (`Durability::Immediate`, redb's
//!   default): whatever a caller acknowledged survives kill -9.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub mod audit;
pub mod json;
mod release;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

/// The only table shape the kit allows: bytes to bytes.
pub type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Schema bookkeeping: `name` and `version` keys.
pub const META: Table = TableDefinition::new("mc_meta");
const META_NAME: &[u8] = b"schema_name";
const META_VERSION: &[u8] = b"schema_version";

/// A step from `to_version - 1` to `to_version`.
pub struct Migration {
    pub to_version: u32,
    pub description: &'static str,
    pub apply: fn(&redb::WriteTransaction) -> Result<(), StoreError>,
}

/// What a service's store looks like: its name and ordered migrations.
/// The current version is the number of migrations.
pub struct Schema {
    pub name: &'static str,
    pub migrations: &'static [Migration],
}

impl Schema {
    pub fn version(&self) -> u32 {
        u32::try_from(self.migrations.len()).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "store {path} is open in another process (stop the service first, or use its admin socket)"
    )]
    Locked { path: PathBuf },
    #[error("store {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("store {path} belongs to schema `{found}`, not `{expected}`")]
    WrongSchema {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "store {path} has schema version {found}, newer than this binary's {supported}: refusing to downgrade"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("schema `{0}`: migrations must be numbered 1, 2, 3… in order")]
    BadMigrations(&'static str),
    #[error("migration {version} ({description}) failed: {message}")]
    Migration {
        version: u32,
        description: &'static str,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    fn db(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Db {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
    /// For migration and service code: wrap any redb error.
    pub fn other(e: impl std::fmt::Display) -> Self {
        Self::Other(e.to_string())
    }
}

/// A store a process owns: its name (used in snapshot file names), file and
/// schema, and the key files outside it that its sealed rows need (a
/// snapshot without them restores data nobody can open).
pub struct StoreSpec {
    pub name: &'static str,
    pub path: PathBuf,
    pub schema: &'static Schema,
    pub key_files: Vec<PathBuf>,
}

/// What a snapshot contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    pub tables: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// An open service store.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// The file under redb, releasable to an upgrading process (see `release`).
    file: release::Releasable,
    /// Write transactions committed through [`json::WriteTx`] since open:
    /// readers that cache what they derived from the store (MCIAS's token
    /// verifier) compare it to know that nothing changed since.
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings it to `schema`'s version.
    pub fn open(path: &Path, schema: &Schema) -> Result<Self, StoreError> {
        for (i, m) in schema.migrations.iter().enumerate() {
            if usize::try_from(m.to_version).ok() != Some(i + 1) {
                return Err(StoreError::BadMigrations(schema.name));
            }
        }
        let (db, file) = open_private(path)?;
        let store = Self {
            db,
            path: path.to_owned(),
            file,
            commits: Default::default(),
        };
        store.migrate(schema)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Lets another process open this store's file while this handle lives:
    /// every later operation through this handle fails and changes nothing
    /// (the data plane's binary upgrade hands its stores to its successor
    /// this way, `mc_dataplane::upgrade`). Waits for I/O already running.
    pub fn release(&self) -> Result<(), StoreError> {
        self.file
            .release()
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Whether [`Store::release`] ran.
    pub fn is_released(&self) -> bool {
        self.file.is_released()
    }

    /// How many [`json::WriteTx`] commits this handle has made (see `commits`).
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The schema version recorded in the file.
    pub fn version(&self) -> Result<u32, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| StoreError::db(&self.path, e))?;
        read_meta(&txn, &self.path).map(|(_, v)| v)
    }

    fn migrate(&self, schema: &Schema) -> Result<(), StoreError> {
        let path = &self.path;
        let found = {
            let txn = self.db.begin_read().map_err(|e| StoreError::db(path, e))?;
            read_meta(&txn, path)?
        };
        let current = match found {
            (Some(name), _) if name != schema.name => {
                return Err(StoreError::WrongSchema {
                    path: path.clone(),
                    found: name,
                    expected: schema.name.to_owned(),
                });
            }
            (_, v) if v > schema.version() => {
                return Err(StoreError::TooNew {
                    path: path.clone(),
                    found: v,
                    supported: schema.version(),
                });
            }
            (_, v) => v,
        };
        for m in schema.migrations.iter().skip(current as usize) {
            let txn = self.db.begin_write().map_err(|e| StoreError::db(path, e))?;
            (m.apply)(&txn).map_err(|e| StoreError::Migration {
                version: m.to_version,
                description: m.description,
                message: e.to_string(),
            })?;
            {
                let mut meta = txn.open_table(META).map_err(|e| StoreError::db(path, e))?;
                meta.insert(META_NAME, schema.name.as_bytes())
                    .map_err(|e| StoreError::db(path, e))?;
                meta.insert(META_VERSION, m.to_version.to_be_bytes().as_slice())
                    .map_err(|e| StoreError::db(path, e))?;
            }
            txn.commit().map_err(|e| StoreError::db(path, e))?;
            tracing::info!(store = %path.display(), version = m.to_version, migration = m.description, "migrated");
        }
        if current == 0 && schema.migrations.is_empty() {
            // Still stamp the name so a file cannot be reused by another service.
            let txn = self.db.begin_write().map_err(|e| StoreError::db(path, e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| StoreError::db(path, e))?;
                meta.insert(META_NAME, schema.name.as_bytes())
                    .map_err(|e| StoreError::db(path, e))?;
            }
            txn.commit().map_err(|e| StoreError::db(path, e))?;
        }
        Ok(())
    }

    /// Writes a consistent copy of the store to `dest` while writers continue.
    ///
    /// The copy is taken from one read transaction (an MVCC snapshot), written
    /// to `dest.tmp`, synced, then renamed over `dest`, so `dest` is either the
    /// old file or a complete snapshot.
    pub fn snapshot_to(&self, dest: &Path) -> Result<SnapshotStats, StoreError> {
        let source = self
            .db
            .begin_read()
            .map_err(|e| StoreError::db(&self.path, e))?;
        let tmp = tmp_path(dest);
        let _ = fs::remove_file(&tmp);
        let (copy, _) = open_private(&tmp)?;
        let mut stats = SnapshotStats {
            tables: 0,
            entries: 0,
            bytes: 0,
        };
        {
            let txn = copy.begin_write().map_err(|e| StoreError::db(&tmp, e))?;
            let handles: Vec<_> = source
                .list_tables()
                .map_err(|e| StoreError::db(&self.path, e))?
                .collect();
            for handle in handles {
                let name = handle.name().to_owned();
                let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
                let from = source.open_table(def).map_err(|e| {
                    StoreError::db(
                        &self.path,
                        format!("table `{name}` is not a bytes table: {e}"),
                    )
                })?;
                let mut to = txn.open_table(def).map_err(|e| StoreError::db(&tmp, e))?;
                for row in from.iter().map_err(|e| StoreError::db(&self.path, e))? {
                    let (k, v) = row.map_err(|e| StoreError::db(&self.path, e))?;
                    to.insert(k.value(), v.value())
                        .map_err(|e| StoreError::db(&tmp, e))?;
                    stats.entries += 1;
                }
                stats.tables += 1;
            }
            txn.commit().map_err(|e| StoreError::db(&tmp, e))?;
        }
        drop(copy);
        sync_file(&tmp)?;
        fs::rename(&tmp, dest).map_err(|e| StoreError::io(dest, e))?;
        sync_parent(dest)?;
        stats.bytes = fs::metadata(dest)
            .map_err(|e| StoreError::io(dest, e))?
            .len();
        tracing::info!(store = %self.path.display(), snapshot = %dest.display(), tables = stats.tables, entries = stats.entries, "snapshot written");
        Ok(stats)
    }

    /// Copies the store at `path` (which must not be open anywhere) to
    /// `dest`. The offline counterpart of [`Store::snapshot_to`].
    pub fn snapshot_offline(
        path: &Path,
        schema: &Schema,
        dest: &Path,
    ) -> Result<SnapshotStats, StoreError> {
        if !path.exists() {
            return Err(StoreError::io(
                path,
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        Self::open(path, schema)?.snapshot_to(dest)
    }

    /// Replaces the store at `target` with the snapshot at `snapshot`.
    ///
    /// The snapshot is checked first (it opens, it is this schema, it is not
    /// newer than this binary); the current file, if any, is kept beside it as
    /// `<target>.pre-restore`. Fails with [`StoreError::Locked`] while a
    /// service has `target` open.
    pub fn restore(snapshot: &Path, target: &Path, schema: &Schema) -> Result<(), StoreError> {
        {
            let snap =
                redb::ReadOnlyDatabase::open(snapshot).map_err(|e| map_open_error(snapshot, e))?;
            let txn = snap.begin_read().map_err(|e| StoreError::db(snapshot, e))?;
            match read_meta(&txn, snapshot)? {
                (Some(name), _) if name != schema.name => {
                    return Err(StoreError::WrongSchema {
                        path: snapshot.to_owned(),
                        found: name,
                        expected: schema.name.to_owned(),
                    });
                }
                (None, _) => {
                    return Err(StoreError::db(
                        snapshot,
                        "not a Metacircular store (no schema name)",
                    ));
                }
                (_, v) if v > schema.version() => {
                    return Err(StoreError::TooNew {
                        path: snapshot.to_owned(),
                        found: v,
                        supported: schema.version(),
                    });
                }
                _ => {}
            }
        }
        if target.exists() {
            // Taking the lock proves no service is using the file right now.
            let live = Database::open(target).map_err(|e| map_open_error(target, e))?;
            drop(live);
        }
        let tmp = tmp_path(target);
        ensure_private_dir(target)?;
        fs::copy(snapshot, &tmp).map_err(|e| StoreError::io(&tmp, e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::io(&tmp, e))?;
        sync_file(&tmp)?;
        if target.exists() {
            let mut keep = target.as_os_str().to_owned();
            keep.push(".pre-restore");
            fs::rename(target, PathBuf::from(keep)).map_err(|e| StoreError::io(target, e))?;
        }
        fs::rename(&tmp, target).map_err(|e| StoreError::io(target, e))?;
        sync_parent(target)?;
        // Open once so a restored older schema is migrated and verified now.
        Self::open(target, schema).map(drop)
    }
}

fn read_meta(
    txn: &redb::ReadTransaction,
    path: &Path,
) -> Result<(Option<String>, u32), StoreError> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, 0)),
        Err(e) => return Err(StoreError::db(path, e)),
    };
    let name = meta
        .get(META_NAME)
        .map_err(|e| StoreError::db(path, e))?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned());
    let version = match meta
        .get(META_VERSION)
        .map_err(|e| StoreError::db(path, e))?
    {
        Some(v) => {
            let bytes: [u8; 4] = v
                .value()
                .try_into()
                .map_err(|_| StoreError::db(path, "corrupt schema_version"))?;
            u32::from_be_bytes(bytes)
        }
        None => 0,
    };
    Ok((name, version))
}

fn map_open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        other => StoreError::db(path, other),
    }
}

fn ensure_private_dir(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::io(dir, e))?;
    }
    Ok(())
}

/// Creates the file owner-only before redb sees it, and tightens an existing one.
fn open_private(path: &Path) -> Result<(Database, release::Releasable), StoreError> {
    ensure_private_dir(path)?;
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    let mode = fs::metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(store = %path.display(), mode = format!("{:o}", mode & 0o777), "store was readable by others; setting 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::io(path, e))?;
    }
    let backend = release::Releasable::new(file).map_err(|e| map_open_error(path, e))?;
    let db = redb::Builder::new()
        .create_with_backend(backend.clone())
        .map_err(|e| map_open_error(path, e))?;
    Ok((db, backend))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

fn sync_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_file(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
