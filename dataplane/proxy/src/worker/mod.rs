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
                match bound.sockets.get(id).map(std::net::TcpListener::try_clone) {
                    Some(Ok(socket)) => match TcpListener::from_std(socket) {
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
                    },
                    Some(Err(e)) => {
                        tracing::error!(worker = id, listener = %bound.name, error = %e, "cannot clone listener socket")
                    }
                    None => {
                        tracing::error!(worker = id, listener = %bound.name, "no socket for this worker")
                    }
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
    // The accept future survives change notifications: dropping an in-flight
    // io_uring accept could lose a connection the kernel already handed over.
    let mut accept = Box::pin(listener.accept());
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
                accept = Box::pin(listener.accept());
            },
            changed = changes.changed() => {
                if changed.is_err() || !still_listed(&published, key) {
                    tracing::debug!(worker = id, listener = %name, "stopped accepting");
                    return;
                }
            }
        }
    }
}
