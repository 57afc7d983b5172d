//! `ExportServiceData` and `ImportServiceData`: `/srv/<service>` as a tar
//! (`archive`) streamed in chunks, the last carrying size and sha256.
//!
//! Invariants: an export pauses the service's running containers only for
//! the copy into a spool file (unpaused on every path); an import is
//! refused while the service runs here, spools and verifies size and
//! digest before unpacking, and writes the service's tree only through
//! `archive::install` (whole or nothing). Both hold the agent's operation
//! lock, so no deploy, stop or start interleaves.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use tokio_stream::Stream;

use crate::agent::Agent;
use crate::archive::{self, ArchiveError, Hashing, Limits};
use crate::{model, store};

/// Bytes per streamed chunk.
const CHUNK: usize = 1 << 20;

fn spool_path(agent: &Agent, what: &str) -> std::io::Result<PathBuf> {
    let dir = agent.cfg.data_dir.join("agent").join("spool");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{what}-{:016x}.tar", rand::random::<u64>())))
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("{what}: {e}"))
}

fn label(service: &str) -> Result<(), ApiError> {
    if model::is_label(service) {
        Ok(())
    } else {
        Err(ApiError::invalid("service", "must match [a-z0-9-]{1,63}"))
    }
}

/// The containers of `service` podman reports running.
async fn running(agent: &Agent, service: &str) -> Result<Vec<String>, ApiError> {
    let Some(d) = store::desired(&agent.store, service)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for c in &d.spec.components {
        let name = c.container(service);
        if let Ok(Some(i)) = agent.podman.inspect(&name).await
            && i.running()
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// Packs `/srv/<service>` (its running containers paused for the copy)
/// and returns the stream of chunks.
pub(crate) async fn export(
    agent: &Arc<Agent>,
    service: &str,
) -> Result<impl Stream<Item = Result<pb::DataChunk, tonic::Status>> + use<>, ApiError> {
    label(service)?;
    let _guard = agent.lock.lock().await;
    let dir = agent.service_dir(service);
    if !dir.is_dir() {
        return Err(ApiError::NotFound(format!(
            "no data for `{service}` on this node ({} does not exist)",
            dir.display()
        )));
    }
    let mut paused: Vec<String> = Vec::new();
    for name in running(agent, service).await? {
        if let Err(e) = agent.podman.pause(&name).await {
            for p in &paused {
                let _ = agent.podman.unpause(p).await;
            }
            return Err(internal(&format!("pausing {name}"), e));
        }
        paused.push(name);
    }
    let spool = spool_path(agent, "export").map_err(|e| internal("spool", e));
    let packed = match spool {
        Ok(path) => tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let f = std::fs::File::create(&path)?;
            let mut w = Hashing::new(std::io::BufWriter::new(f));
            let r = archive::pack(&dir, &mut w);
            let (sha, bytes, buf) = w.finish();
            let f = buf.into_inner().map_err(|e| e.into_error());
            if r.is_err() || f.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            r?;
            f?;
            // Unlinked at once: the open handle streams it, nothing is left.
            let f = std::fs::File::open(&path);
            let _ = std::fs::remove_file(&path);
            Ok((f?, sha, bytes))
        })
        .await
        .map_err(|e| internal("export", e))
        .and_then(|r| r.map_err(|e| internal("packing", e))),
        Err(e) => Err(e),
    };
    for p in &paused {
        if let Err(e) = agent.podman.unpause(p).await {
            tracing::error!(container = %p, error = %e, "unpause after export");
        }
    }
    let (file, sha256, total) = packed?;
    tracing::info!(service, bytes = total, %sha256, paused = paused.len(), "export");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut file = std::io::BufReader::new(file);
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(tonic::Status::internal(e.to_string())));
                    return;
                }
            };
            let chunk = if n == 0 {
                pb::DataChunk {
                    total_bytes: total,
                    sha256: sha256.clone(),
                    ..pb::DataChunk::default()
                }
            } else {
                buf.truncate(n);
                pb::DataChunk {
                    data: buf,
                    ..pb::DataChunk::default()
                }
            };
            if tx.blocking_send(Ok(chunk)).is_err() || n == 0 {
                return;
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Receives an archive, checks it and installs it as `/srv/<service>`.
pub(crate) async fn import(
    agent: &Arc<Agent>,
    mut stream: tonic::Streaming<pb::DataChunk>,
) -> Result<pb::ImportServiceDataResponse, ApiError> {
    let first = stream
        .message()
        .await
        .map_err(|s| ApiError::invalid("data", s.message().to_owned()))?
        .ok_or_else(|| ApiError::invalid("service", "the stream was empty"))?;
    let service = first.service.clone();
    label(&service)?;
    let _guard = agent.lock.lock().await;
    let dir = agent.service_dir(&service);
    let desired_running = store::desired(&agent.store, &service)?.is_some_and(|d| d.running);
    if desired_running || !running(agent, &service).await?.is_empty() {
        return Err(ApiError::FailedPrecondition(format!(
            "`{service}` runs on this node: stop it before importing its data"
        )));
    }
    if dir.exists() && !first.force {
        return Err(ApiError::FailedPrecondition(format!(
            "{} exists: import with force to replace it",
            dir.display()
        )));
    }
    let path = spool_path(agent, "import").map_err(|e| internal("spool", e))?;
    let r = receive(agent, first, &mut stream, &path, &service).await;
    let _ = std::fs::remove_file(&path);
    let r = r?;
    tracing::info!(service, bytes = r.bytes, files = r.files, "import");
    Ok(r)
}

async fn receive(
    agent: &Agent,
    first: pb::DataChunk,
    stream: &mut tonic::Streaming<pb::DataChunk>,
    path: &std::path::Path,
    service: &str,
) -> Result<pb::ImportServiceDataResponse, ApiError> {
    let max = agent.cfg.services.max_archive;
    let file = std::fs::File::create(path).map_err(|e| internal("spool", e))?;
    let mut w = Hashing::new(std::io::BufWriter::new(file));
    let mut chunk = Some(first);
    let mut last = None;
    while let Some(c) = chunk {
        if last.is_some() {
            return Err(ApiError::invalid("data", "a chunk after the last one"));
        }
        if w.bytes + c.data.len() as u64 > max {
            return Err(ApiError::invalid(
                "data",
                format!("the archive is larger than {max} bytes"),
            ));
        }
        w.write_all(&c.data).map_err(|e| internal("spool", e))?;
        if !c.sha256.is_empty() {
            last = Some((c.total_bytes, c.sha256));
        }
        chunk = stream
            .message()
            .await
            .map_err(|s| ApiError::invalid("data", s.message().to_owned()))?;
    }
    let (sha, bytes, buf) = w.finish();
    buf.into_inner()
        .map_err(|e| internal("spool", e.into_error()))?
        .sync_all()
        .map_err(|e| internal("spool", e))?;
    let Some((total, want)) = last else {
        return Err(ApiError::invalid(
            "sha256",
            "the stream ended without a last chunk (size and sha256)",
        ));
    };
    if total != bytes || want != sha {
        return Err(ApiError::invalid(
            "sha256",
            format!(
                "received {bytes} bytes with sha256 {sha}; the sender said {total} bytes, {want}"
            ),
        ));
    }
    let limits = Limits {
        max_entries: agent.cfg.services.max_entries,
        max_bytes: agent.cfg.services.max_unpacked,
    };
    let root = agent.cfg.services.root.clone();
    let (path, service) = (path.to_owned(), service.to_owned());
    let done = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path)?;
        archive::install(std::io::BufReader::new(f), &root, &service, limits)
    })
    .await
    .map_err(|e| internal("import", e))?
    .map_err(|e| match e {
        ArchiveError::Refused { .. } | ArchiveError::Malformed(_) => {
            ApiError::invalid("data", e.to_string())
        }
        ArchiveError::Io(e) => internal("unpacking", e),
    })?;
    Ok(pb::ImportServiceDataResponse {
        bytes: done.bytes,
        files: done.entries,
    })
}
