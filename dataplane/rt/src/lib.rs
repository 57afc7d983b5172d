//! mc-rt: the data plane's thread-per-core runtime.
//!
//! The only crate that knows monoio: the proxy and DNS crates see workers,
//! sockets and a [`Driver`], so a swap to another runtime touches this crate.
//!
//! - [`driver`]: decide once per process between io_uring and epoll, and say why;
//! - [`workers`]: one OS thread per worker, each running its own monoio runtime;
//! - [`socket`]: `SO_REUSEPORT` listeners (one per worker) and closing with RST;
//! - [`stats`]: per-worker counters, summed when read;
//! - [`handover`]: passing listening sockets to another process (SCM_RIGHTS).

pub mod driver;
pub mod handover;
pub mod socket;
pub mod stats;
pub mod workers;

pub use driver::{Driver, DriverChoice, IoMode};
