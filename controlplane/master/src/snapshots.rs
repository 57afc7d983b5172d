//! Snapshots of a service's `/srv/<service>`, kept on the master: an
//! agent's `ExportServiceData` stored as `<data_dir>/mcp/snapshots/
//! <service>/<id>.tar` with a row (service, node, time, size, sha256);
//! `RestoreSnapshot` streams one back through `ImportServiceData`.
//!
//! Invariants: a row exists only for a file whose size and sha256 matched
//! the agent's last chunk, written to a temp name, fsynced, then renamed;
//! at most the service's `[snapshots] keep`, else `mcp.snapshots_keep`,
//! per service (the oldest deleted with their files); a restore verifies the file before it stops the service, and
//! starts the service again whether or not the import succeeded.

use std::path::{Path, PathBuf};

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Master;
use crate::agents::{self, AgentCall};
use crate::deploy::{from_pb, known, node_of, record, step, steps_pb};
use crate::registry::now_ms;
use crate::store::{self, Change, SnapshotRow, Step};

/// Bytes per chunk sent to an agent.
const CHUNK: usize = 1 << 20;

/// sha256 of a stream of bytes, in lower-case hex.
struct Digest(aws_lc_rs::digest::Context);

impl Digest {
    fn new() -> Self {
        Self(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    fn hex(self) -> String {
        self.0
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn dir_of(m: &Master, service: &str) -> PathBuf {
    m.snapshots.join(service)
}

fn file_of(m: &Master, row: &SnapshotRow) -> PathBuf {
    dir_of(m, &row.service).join(format!("{}.tar", row.id))
}

pub(crate) fn to_pb(r: &SnapshotRow) -> pb::Snapshot {
    pb::Snapshot {
        id: r.id.clone(),
        service: r.service.clone(),
        node: r.node.clone(),
        created_at_unix: r.created_at,
        bytes: r.bytes,
        sha256: r.sha256.clone(),
    }
}

/// Streams `service`'s export from `agent` into a new snapshot file and
/// row (retention applied). The message is the operator's reason.
pub(crate) async fn take(
    m: &Master,
    agent: &AgentCall,
    service: &str,
) -> Result<SnapshotRow, String> {
    let at = now_ms() / 1000;
    let id = format!("{service}-{at}-{:08x}", rand_u32());
    let dir = dir_of(m, service);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let partial = dir.join(format!(".{id}.partial"));
    let r = receive(agent, service, &partial).await;
    let (bytes, sha256) = match r {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    let row = SnapshotRow {
        id,
        service: service.to_owned(),
        node: agent.node.clone(),
        created_at: at,
        bytes,
        sha256,
    };
    let file = file_of(m, &row);
    tokio::fs::rename(&partial, &file)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let keep = usize::try_from(keep_for(m, service)).unwrap_or(usize::MAX);
    let old = store::add_snapshot(&m.store, &row, keep).map_err(|e| e.to_string())?;
    for o in &old {
        let _ = tokio::fs::remove_file(file_of(m, o)).await;
    }
    tracing::info!(service, id = %row.id, bytes, node = %row.node, dropped = old.len(), "snapshot");
    Ok(row)
}

/// Snapshots kept for `service`: its schedule's `keep`, else the master's.
fn keep_for(m: &Master, service: &str) -> u32 {
    store::service(&m.store, service)
        .ok()
        .flatten()
        .and_then(|r| r.def.snapshots)
        .map(|s| s.keep)
        .filter(|k| *k > 0)
        .unwrap_or(m.config.snapshots_keep)
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    // A clock fallback keeps ids unique enough if the RNG were unavailable.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return u32::try_from(now_ms().rem_euclid(1 << 31)).unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

async fn receive(agent: &AgentCall, service: &str, path: &Path) -> Result<(u64, String), String> {
    let mut client = agent.client.clone();
    let mut stream = client
        .export_service_data(agent.req(pb::ExportServiceDataRequest {
            service: service.to_owned(),
        }))
        .await
        .map_err(|s| agent.error(&s).to_string())?
        .into_inner();
    let mut f = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut digest = Digest::new();
    let mut bytes = 0u64;
    let mut last = None;
    while let Some(c) = stream
        .message()
        .await
        .map_err(|s| agent.error(&s).to_string())?
    {
        if last.is_some() {
            return Err("the agent sent data after its last chunk".to_owned());
        }
        digest.0.update(&c.data);
        bytes += c.data.len() as u64;
        f.write_all(&c.data).await.map_err(|e| e.to_string())?;
        if !c.sha256.is_empty() {
            last = Some((c.total_bytes, c.sha256));
        }
    }
    f.sync_all().await.map_err(|e| e.to_string())?;
    let sha = digest.hex();
    match last {
        Some((total, want)) if total == bytes && want == sha => Ok((bytes, sha)),
        Some((total, want)) => Err(format!(
            "received {bytes} bytes with sha256 {sha}; the agent said {total} bytes, {want}"
        )),
        None => Err("the export ended without its last chunk".to_owned()),
    }
}

/// The sha256 of the file of `row`, checked against the row.
async fn verify(m: &Master, row: &SnapshotRow) -> Result<(), String> {
    let path = file_of(m, row);
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut digest = Digest::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        digest.0.update(&buf[..n]);
    }
    let sha = digest.hex();
    if sha == row.sha256 {
        Ok(())
    } else {
        Err(format!(
            "{} has sha256 {sha}, not {} as recorded",
            path.display(),
            row.sha256
        ))
    }
}

/// Streams the file of `row` to `agent`'s `ImportServiceData` (with
/// `force`: the data is meant to replace what is there).
pub(crate) async fn send(
    m: &Master,
    agent: &AgentCall,
    row: &SnapshotRow,
) -> Result<pb::ImportServiceDataResponse, String> {
    let path = file_of(m, row);
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (service, total, sha256) = (row.service.clone(), row.bytes, row.sha256.clone());
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a snapshot");
                    return;
                }
            };
            buf.truncate(n);
            let mut c = pb::DataChunk {
                data: buf,
                ..pb::DataChunk::default()
            };
            if first {
                c.service.clone_from(&service);
                c.force = true;
                first = false;
            }
            if n == 0 {
                c.total_bytes = total;
                c.sha256.clone_from(&sha256);
            }
            if tx.send(c).await.is_err() || n == 0 {
                return;
            }
        }
    });
    let mut client = agent.client.clone();
    client
        .import_service_data(agent.req(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| agent.error(&s).to_string())
}

pub(crate) async fn create(
    m: &Master,
    c: &Caller,
    service: &str,
) -> Result<pb::Snapshot, ApiError> {
    let _guard = m.ops.lock().await;
    let row = known(m, service)?;
    let agent = agents::connect(m, &node_of(m, &row.node)?)?;
    let r = take(m, &agent, service).await;
    let steps = vec![match &r {
        Ok(s) => step("snapshot", true, format!("{} ({} bytes)", s.id, s.bytes)),
        Err(e) => step("snapshot", false, e.clone()),
    }];
    let rec = record(c, service, &row.node, "snapshot", steps);
    store::finish(&m.store, &rec, Change::Keep).map_err(ApiError::internal)?;
    r.map(|s| to_pb(&s)).map_err(ApiError::Unavailable)
}

pub(crate) fn list(m: &Master, service: &str) -> Result<pb::ListSnapshotsResponse, ApiError> {
    let rows = store::snapshots(&m.store, service).map_err(ApiError::internal)?;
    Ok(pb::ListSnapshotsResponse {
        snapshots: rows.iter().map(to_pb).collect(),
        next_at_unix: if service.is_empty() {
            0
        } else {
            crate::schedule::next_at(m, service)
        },
    })
}

/// Stop, import, start on the service's node; `force` is implied (a
/// restore replaces the data by definition).
pub(crate) async fn restore(
    m: &Master,
    c: &Caller,
    r: pb::RestoreSnapshotRequest,
) -> Result<pb::RestoreSnapshotResponse, ApiError> {
    let _guard = m.ops.lock().await;
    let snap = store::snapshot(&m.store, &r.snapshot_id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no snapshot is named {}", r.snapshot_id)))?;
    let row = known(m, &snap.service)?;
    if !r.node.is_empty() && r.node != row.node {
        return Err(ApiError::FailedPrecondition(format!(
            "{} runs on {}: restoring onto {} is a migration (mcctl migrate)",
            snap.service, row.node, r.node
        )));
    }
    let agent = agents::connect(m, &node_of(m, &row.node)?)?;
    let mut steps = Vec::new();
    match verify(m, &snap).await {
        Ok(()) => steps.push(step("verify", true, format!("sha256 {}", snap.sha256))),
        Err(e) => {
            steps.push(step("verify", false, e));
            return finish(m, c, &row.node, &snap.service, steps);
        }
    }
    if !act(&agent, &snap.service, false, &mut steps).await {
        act(&agent, &snap.service, true, &mut steps).await;
        return finish(m, c, &row.node, &snap.service, steps);
    }
    steps.push(match send(m, &agent, &snap).await {
        Ok(d) => step(
            "import",
            true,
            format!("{} files, {} bytes", d.files, d.bytes),
        ),
        Err(e) => step("import", false, e),
    });
    act(&agent, &snap.service, true, &mut steps).await;
    finish(m, c, &row.node, &snap.service, steps)
}

fn finish(
    m: &Master,
    c: &Caller,
    node: &str,
    service: &str,
    steps: Vec<Step>,
) -> Result<pb::RestoreSnapshotResponse, ApiError> {
    let rec = record(c, service, node, "restore", steps);
    store::finish(&m.store, &rec, Change::Keep).map_err(ApiError::internal)?;
    tracing::info!(service, node, success = rec.success, by = %rec.by, "restore");
    Ok(pb::RestoreSnapshotResponse {
        success: rec.success,
        steps: steps_pb(&rec.steps),
    })
}

/// Stops (`start` false) or starts the service through `agent`, appending
/// its steps; whether every one succeeded.
pub(crate) async fn act(
    agent: &AgentCall,
    service: &str,
    start: bool,
    steps: &mut Vec<Step>,
) -> bool {
    let mut client = agent.client.clone();
    let req = agent.req(pb::ServiceActionRequest {
        service: service.to_owned(),
    });
    let (name, r) = if start {
        ("start", client.start_service(req).await)
    } else {
        ("stop", client.stop_service(req).await)
    };
    match r {
        Ok(resp) => {
            let resp = resp.into_inner();
            let before = steps.len();
            steps.extend(from_pb(resp.steps).map(|s| Step {
                step: format!("{}: {}", agent.node, s.step),
                ..s
            }));
            if !resp.success && steps[before..].iter().all(|s| s.success) {
                steps.push(step(name, false, "the agent reported a failure"));
            }
            resp.success
        }
        Err(s) => {
            steps.push(step(name, false, agent.error(&s).to_string()));
            false
        }
    }
}
