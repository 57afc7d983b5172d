//! Worker threads: one OS thread and one monoio runtime each.
//!
//! Architecture invariant: a worker's future is built on its own thread and
//! never moves; it may use `Rc`, `RefCell` and `!Send` I/O freely. What workers
//! share is read-only (snapshots behind `ArcSwap`) or per-worker atomics.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::Driver;

/// Starts `count` workers; worker `i` runs `make(i)` to completion on its own runtime.
pub fn spawn<F, Fut>(count: usize, driver: Driver, make: F) -> io::Result<Vec<JoinHandle<()>>>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    (0..count)
        .map(|id| {
            let make = make.clone();
            std::thread::Builder::new()
                .name(format!("mc-worker-{id}"))
                .spawn(move || {
                    let result = match driver {
                        Driver::Uring => RuntimeBuilder::<IoUringDriver>::new()
                            .enable_timer()
                            .with_entries(1024)
                            .build()
                            .map(|mut rt| rt.block_on(make(id))),
                        Driver::Epoll => RuntimeBuilder::<LegacyDriver>::new()
                            .enable_timer()
                            .build()
                            .map(|mut rt| rt.block_on(make(id))),
                    };
                    if let Err(e) = result {
                        tracing::error!(worker = id, driver = %driver, error = %e, "worker runtime failed to start");
                    }
                })
        })
        .collect()
}

/// The number of CPUs this process may run on: the default worker count.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
