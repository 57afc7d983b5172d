//! A store file another process can take over while this one still runs.
//!
//! redb locks its file for as long as the `Database` lives, and a service's
//! `Arc<Store>` has many holders. For the data plane's binary upgrade the
//! running process must let its successor open the same file before it has
//! finished draining, so every store sits on [`Releasable`]: redb's own
//! `FileBackend`, behind a gate. [`Gate::release`] shuts the gate (every
//! later read, write or lock fails with an I/O error, so redb refuses the
//! operation and commits nothing), waits for the calls already inside, and
//! releases redb's locks. From then on this process never touches the file.
//!
//! Invariant: after `release` returns, this handle performs no I/O on the
//! file; a transaction that was committing either completed before it or
//! fails (wholly present or wholly absent, as after kill -9).

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use redb::StorageBackend;
use redb::backends::FileBackend;

/// Shared by the backend (inside redb) and the `Store` that may release it.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    released: AtomicBool,
    inside: AtomicU32,
}

/// One call through the gate.
struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

fn released_error() -> io::Error {
    io::Error::other("the store was handed to an upgrading process")
}

impl Gate {
    fn enter(&self) -> io::Result<Pass<'_>> {
        // Count first, then check: `release` sets the flag first, then waits
        // for the count, so a call either sees the flag or is waited for.
        self.inside.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        if self.released.load(Ordering::SeqCst) {
            return Err(released_error());
        }
        Ok(pass)
    }

    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Shuts the gate and waits (at most `wait`) for calls already inside.
    fn shut(&self, wait: std::time::Duration) -> io::Result<()> {
        self.released.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + wait;
        while self.inside.load(Ordering::SeqCst) != 0 {
            if std::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "store I/O still running",
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }
}

/// redb's file backend behind a [`Gate`]; the `Store` keeps a second
/// handle to release it.
#[derive(Debug, Clone)]
pub(crate) struct Releasable(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    gate: Gate,
    file: FileBackend,
}

impl Releasable {
    pub(crate) fn new(file: File) -> Result<Self, redb::DatabaseError> {
        Ok(Self(Arc::new(Shared {
            gate: Gate::default(),
            file: FileBackend::new(file)?,
        })))
    }

    pub(crate) fn is_released(&self) -> bool {
        self.0.gate.is_released()
    }

    /// Shuts the gate and releases the file's locks: another process may
    /// open the file now, and this one never touches it again.
    pub(crate) fn release(&self) -> io::Result<()> {
        if self.is_released() {
            return Ok(());
        }
        self.0.gate.shut(std::time::Duration::from_secs(5))?;
        self.0.file.close()
    }
}

fn lock_err(e: io::Error) -> redb::BackendError {
    redb::BackendError::Io(e)
}

impl StorageBackend for Releasable {
    fn len(&self) -> Result<u64, io::Error> {
        let _p = self.0.gate.enter()?;
        self.0.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let _p = self.0.gate.enter()?;
        self.0.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let _p = self.0.gate.enter()?;
        self.0.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let _p = self.0.gate.enter()?;
        self.0.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let _p = self.0.gate.enter()?;
        self.0.file.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        // Released: the locks are gone already (and the file may be another
        // process's now); redb's clean-shutdown write is refused by the gate.
        if self.is_released() {
            return Ok(());
        }
        self.0.file.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        let _p = self.0.gate.enter().map_err(lock_err)?;
        self.0.file.query_lock_range(start, end)
    }
}
