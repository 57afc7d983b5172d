//! The worker side, the hot path: one worker per core accepts on its own
//! `SO_REUSEPORT` socket of every listener and runs each connection as a
//! task on its own runtime ([`conn`] for the pipeline, [`l7`] for TLS
//! termination).
//!
//! Invariant: a worker reads only what [`crate::published`] holds, never the
//! admin side, takes no lock and never touches the store (check-arch); it
//! does not panic or index unchecked (the clippy lints below).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub(crate) mod conn;
pub(crate) mod l7;
pub(crate) mod plain;

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use std::sync::atomic::Ordering;

use monoio::io::Canceller;
use monoio::net::TcpListener;

use crate::published::{BoundListener, Published};

/// Runs worker `id` until the listener set stops changing (the sender is dropped).
pub(crate) async fn run(id: usize, published: Arc<Published>) {
    let mut changes = published.changes.subscribe();
    let mut running: HashSet<usize> = HashSet::new();
    loop {
        let set = published.listeners.load_full();
        let live: HashSet<usize> = set
            .listeners
            .iter()
            .map(|b| Arc::as_ptr(b) as usize)
            .collect();
        for bound in &set.listeners {
            let key = Arc::as_ptr(bound) as usize;
            if running.insert(key) {
                // Worker `id` takes sockets id, id+W, …: sockets handed over by a
                // process with more workers still have someone accepting.
                let mine = bound
                    .sockets
                    .iter()
                    .skip(id)
                    .step_by(published.workers.max(1));
                let mut any = false;
                for socket in mine {
                    any = true;
                    match socket.try_clone().and_then(TcpListener::from_std) {
                        Ok(listener) => {
                            monoio::spawn(accept_loop(
                                id,
                                listener,
                                bound.name.as_str().into(),
                                key,
                                published.clone(),
                            ));
                        }
                        Err(e) => {
                            tracing::error!(worker = id, listener = %bound.name, error = %e, "cannot adopt listener socket")
                        }
                    }
                }
                if !any && id < bound.sockets.len() {
                    tracing::error!(worker = id, listener = %bound.name, "no socket for this worker");
                }
            }
        }
        running.retain(|k| live.contains(k));
        drop(set);
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn still_listed(published: &Published, key: usize) -> bool {
    published
        .listeners
        .load()
        .listeners
        .iter()
        .any(|b: &Arc<BoundListener>| Arc::as_ptr(b) as usize == key)
}

async fn accept_loop(
    id: usize,
    listener: TcpListener,
    name: Rc<str>,
    key: usize,
    published: Arc<Published>,
) {
    let mut changes = published.changes.subscribe();
    tracing::debug!(worker = id, listener = %name, "accepting");
    published.armed.fetch_add(1, Ordering::Relaxed);
    // The accept future survives change notifications, and stopping cancels
    // it and then awaits it: a dropped io_uring accept could lose a connection
    // the kernel already handed over (and during an upgrade the successor
    // accepts on the same socket, so nothing may be left half-taken).
    let canceller = Canceller::new();
    let mut accept = Box::pin(listener.cancelable_accept(canceller.handle()));
    loop {
        monoio::select! {
            accepted = &mut accept => {
                match accepted {
                    Ok((stream, peer)) => {
                        monoio::spawn(conn::handle(stream, peer, name.clone(), id, published.clone()));
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(worker = id, listener = %name, error = %e, "accept failed");
                        monoio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
                accept = Box::pin(listener.cancelable_accept(canceller.handle()));
            },
            changed = changes.changed() => {
                if changed.is_err() || !still_listed(&published, key) {
                    break;
                }
            }
        }
    }
    let _ = canceller.cancel();
    // Completed before the cancel reached it: serve it.
    if let Ok((stream, peer)) = accept.await {
        monoio::spawn(conn::handle(
            stream,
            peer,
            name.clone(),
            id,
            published.clone(),
        ));
    }
    published.armed.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(worker = id, listener = %name, "stopped accepting");
}
