//! The worker side of MCNS, on monoio worker threads: the UDP and TCP loops
//! ([`udp`], [`tcp`]), the per-query decision ([`server::process`]), the
//! authoritative lookup, forwarding with its per-worker cache, zone transfer
//! out, message parsing and TCP framing.
//!
//! Invariant: nothing here imports the admin side, takes a lock or touches
//! the store (check-arch); it reads [`crate::published`] only.
//!
//! A worker answers on its own `SO_REUSEPORT` UDP socket and TCP listener
//! of every listen address, on its own runtime.
//!
//! Any bytes a peer sends reach code here, so it is held to mc-wire's
//! lints: no indexing or slicing that can panic, no `panic!`, `unwrap` or
//! `expect`.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

pub(crate) mod answer;
pub(crate) mod forward;
pub(crate) mod io;
pub mod message;
pub(crate) mod server;
mod tcp;
mod udp;
pub(crate) mod update;
pub(crate) mod wire;
pub(crate) mod xfr;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;
use monoio::net::udp::UdpSocket;

use crate::published::{Published, WorkerSockets};
use forward::Forwarder;

/// One worker's context, shared by its tasks (never across threads).
struct Ctx {
    id: usize,
    p: Arc<Published>,
    forwarder: Forwarder,
    /// This worker's RRL slip counter.
    slip: Cell<u32>,
    tcp_open: Cell<usize>,
    sends: Cell<usize>,
}

/// Runs worker `id` until shutdown, then until its TCP connections end.
pub(crate) async fn run(id: usize, p: Arc<Published>, sockets: WorkerSockets) {
    let ctx = Rc::new(Ctx {
        id,
        forwarder: Forwarder::new(p.settings.cache_entries, id),
        p,
        slip: Cell::new(0),
        tcp_open: Cell::new(0),
        sends: Cell::new(0),
    });
    for s in sockets.udp {
        match UdpSocket::from_std(s) {
            Ok(sock) => {
                monoio::spawn(udp::udp_loop(ctx.clone(), Rc::new(sock)));
            }
            Err(e) => tracing::error!(worker = id, error = %e, "dns: cannot adopt UDP socket"),
        }
    }
    for l in sockets.tcp {
        match TcpListener::from_std(l) {
            Ok(listener) => {
                monoio::spawn(tcp::accept_loop(ctx.clone(), listener));
            }
            Err(e) => tracing::error!(worker = id, error = %e, "dns: cannot adopt TCP listener"),
        }
    }
    let mut stop = ctx.p.stop.subscribe();
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    // Let open TCP connections finish their current query (bounded by the admin side's drain).
    while ctx.tcp_open.get() > 0 {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}
