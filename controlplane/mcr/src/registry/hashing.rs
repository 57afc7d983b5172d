//! Hashing an upload's body beside its reads and writes: bodies of at
//! least [`OFFLOAD`] bytes (or of unknown length) are hashed on a blocking
//! thread fed in batches through a bounded channel, so SHA-256 over one
//! batch overlaps TLS decryption and the file write of the next on a
//! second core; shorter bodies are hashed inline (a thread hop costs more
//! than it saves).
//!
//! Invariant: the hasher that comes back has seen every byte given to
//! [`Hashing::update`], in order (one channel, one consumer); a failed
//! request drops it, so the session keeps its old hasher.

use bytes::Bytes;

use super::digest::Hasher;
use crate::error::RegistryError;

/// Bodies at least this long are hashed off the request's task.
pub(super) const OFFLOAD: u64 = 4 << 20;
/// Bytes gathered before one hand-off to the hashing thread.
const BATCH: usize = 1 << 20;
/// Batches in flight: bounds the memory a slow hasher can hold.
const QUEUE: usize = 4;

/// The running hash of one request's body.
pub(super) enum Hashing {
    Inline(Hasher),
    Offloaded {
        batch: Vec<Bytes>,
        batched: usize,
        tx: tokio::sync::mpsc::Sender<Vec<Bytes>>,
        task: tokio::task::JoinHandle<Hasher>,
    },
}

impl Hashing {
    /// Continues `h`, on a blocking thread when `offload`.
    pub(super) fn new(h: Hasher, offload: bool) -> Self {
        if !offload {
            return Self::Inline(h);
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            let mut h = h;
            while let Some(batch) = rx.blocking_recv() {
                for b in batch {
                    h.update(&b);
                }
            }
            h
        });
        Self::Offloaded {
            batch: Vec::new(),
            batched: 0,
            tx,
            task,
        }
    }

    pub(super) async fn update(&mut self, chunk: Bytes) -> Result<(), RegistryError> {
        match self {
            Self::Inline(h) => {
                h.update(&chunk);
                Ok(())
            }
            Self::Offloaded {
                batch, batched, tx, ..
            } => {
                *batched += chunk.len();
                batch.push(chunk);
                if *batched >= BATCH {
                    *batched = 0;
                    tx.send(std::mem::take(batch)).await.map_err(|_| {
                        RegistryError::internal("the upload's hashing thread stopped")
                    })?;
                }
                Ok(())
            }
        }
    }

    /// The hasher after every byte given to [`Self::update`].
    pub(super) async fn finish(self) -> Result<Hasher, RegistryError> {
        match self {
            Self::Inline(h) => Ok(h),
            Self::Offloaded {
                batch, tx, task, ..
            } => {
                if !batch.is_empty() {
                    tx.send(batch).await.map_err(|_| {
                        RegistryError::internal("the upload's hashing thread stopped")
                    })?;
                }
                drop(tx);
                task.await.map_err(RegistryError::internal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::{Algorithm, Digest};

    #[tokio::test]
    async fn offloaded_and_inline_hashes_agree_with_one_pass() {
        let data: Vec<u8> = (0..(3 * BATCH + 12_345)).map(|i| (i % 251) as u8).collect();
        for offload in [false, true] {
            let mut h = Hashing::new(Hasher::new(Algorithm::Sha256), offload);
            for piece in data.chunks(16 * 1024 + 7) {
                h.update(Bytes::copy_from_slice(piece))
                    .await
                    .expect("update");
            }
            let got = h.finish().await.expect("finish").finish();
            assert_eq!(
                got,
                Digest::of(Algorithm::Sha256, &data),
                "offload {offload}"
            );
        }
    }
}
