//! The binary upgrade: a running data plane (the donor) hands every socket
//! clients reach, and its stores, to its successor (`mcd dataplane
//! --upgrade`), which accepts on the same sockets before the donor stops.
//! The sequence and its failure cases: docs/design/ops.md ("Zero-downtime upgrade").
//!
//! Invariants:
//! - no listening socket is closed or re-bound: both processes hold the same
//!   sockets until the donor exits, so the kernel's queues are never lost;
//! - the donor releases its stores (`mc_kit::store::Store::release`) before
//!   the successor opens them, so only one process ever writes a store;
//! - one upgrade at a time: a second hello is refused while one runs;
//! - nothing changes in the donor until the successor asks for the stores
//!   (`release`): a successor that fails earlier leaves the donor untouched.

mod donor;
mod protocol;
mod reexec;
mod successor;

pub(crate) use donor::{Donor, Sources};
pub(crate) use reexec::{notify_systemd, watch_sigusr2};
pub(crate) use successor::{Inherited, Successor};

/// The upgrade socket: `admin.upgrade_socket`, else beside the admin socket.
pub(crate) fn socket_path(admin: &crate::config::AdminSection) -> std::path::PathBuf {
    admin
        .upgrade_socket
        .clone()
        .unwrap_or_else(|| admin.socket.with_extension("upgrade.sock"))
}
