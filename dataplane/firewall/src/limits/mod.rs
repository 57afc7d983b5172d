//! Per-client limits checked at accept time: a lock-free GCRA rate limiter on
//! new connections ([`RateLimiter`]) and concurrent-connection caps per client
//! and in total ([`ConnectionLimiter`]).
//!
//! Both are fixed-size tables of atomics shared by all workers: no lock, no
//! allocation per check, and memory fixed at construction whatever peers do.
//! Limits can be changed in place (`set_*`) so counters survive a config
//! change; keep one instance for the life of the process.
//!
//! A *client* is an IPv4 address or an IPv6 /64 (one host usually owns a
//! whole /64, so limiting per /128 would be trivially evaded). IPv4-mapped
//! IPv6 addresses are IPv4 clients. Clients are hashed with SipHash under a
//! per-process random key ([`std::hash::RandomState`]), so a peer cannot
//! choose addresses that collide on purpose.
//!
//! # Rate limiter: semantics
//!
//! GCRA with emission interval `T = 1000 / rate` ms and tolerance
//! `burst * T`: a new client may open `burst` connections at once, then one
//! every `T`; an idle client earns its burst back at the same pace. Refused
//! attempts cost nothing, so hammering does not extend a lock-out. Time is
//! kept in milliseconds since the limiter was created.
//!
//! # Rate limiter: collisions and the memory bound
//!
//! Memory is `table_size * 8` bytes, fixed: the table never grows and there
//! is nothing to evict on a timer. The price is that clients compete for
//! cells:
//!
//! - Each client has two candidate cells (two hashes). A cell whose TAT is
//!   not after `now` is *expired*: its client is back to a full burst, which
//!   is exactly the state of a client never seen, so expired cells are free
//!   and a client's state is only needed while it is over its rate.
//! - When both candidate cells hold live state of other clients, the one
//!   with the oldest TAT (closest to expiring) is overwritten. The evicted
//!   client then starts again with a full burst: a flood of distinct
//!   addresses can make the limiter *forget* throttled clients (fail open),
//!   but it can never make it refuse a client that is within its rate.
//!   Eviction needs both of a client's cells to be taken by live state, so
//!   with 2^16 cells it starts to matter when tens of thousands of distinct
//!   clients are over their rate at the same moment; size the table for the
//!   expected number of concurrently throttled clients.
//! - A cell identifies its client by a 24-bit tag. Two clients with the same
//!   cell *and* the same tag (about 1 in 16 million per pair sharing a cell)
//!   share one budget, so one can be refused for the other's connections.
//!   The hash key is random per process, so this cannot be aimed.
//!
//! # Connection limiter: collisions
//!
//! One counter per hash bucket, no tags: clients sharing a bucket are counted
//! together, which can only over-count (refuse early), never admit past a
//! cap. See [`ConnectionLimiter`].

mod conn;
mod rate;

#[cfg(test)]
mod tests;

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

pub use conn::{ConnGuard, ConnectionLimiter, ConnectionLimiterConfig};
pub use rate::{RateLimiter, RateLimiterConfig};

use crate::error::LimitConfigError;

/// Default number of cells in a limiter table (2^16).
pub const DEFAULT_TABLE_SIZE: usize = 1 << 16;

/// The client an address belongs to, as one integer: IPv4 as its mapped
/// IPv6 form (`::ffff:a.b.c.d`, low 64 bits never zero), IPv6 as its /64
/// (low 64 bits zero). The two families never produce the same key.
fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(a) & !u128::from(u64::MAX),
        },
    }
}

/// Keyed hash of a client.
#[derive(Debug, Default)]
struct ClientHasher(RandomState);

impl ClientHasher {
    fn hash(&self, ip: IpAddr) -> u64 {
        self.0.hash_one(client_key(ip))
    }
}

/// Checks a table size: a power of two in `2^4 ..= 2^24`.
fn check_table_size(what: &'static str, size: usize) -> Result<usize, LimitConfigError> {
    if size.is_power_of_two() && (1 << 4..=1 << 24).contains(&size) {
        Ok(size)
    } else {
        Err(LimitConfigError::TableSize { what, size })
    }
}

/// A second, independent-looking index from the same hash (murmur3 fmix64).
fn remix(mut h: u64) -> u64 {
    h ^= 0x9e37_79b9_7f4a_7c15;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}
