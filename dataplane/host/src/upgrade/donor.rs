//! The running process's side: listen on the upgrade socket, and for one
//! successor at a time send the sockets, release the stores when asked, and
//! stop accepting when the successor takes over.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mc_kit::shutdown::{Shutdown, Trigger};
use mc_kit::store::Store;
use mc_rt::handover::{Channel, ChannelListener, MAX_FDS};

use super::protocol::{Msg, SocketKind, VERSION};

/// How long a successor may take between steps (opening the stores and
/// building the snapshots of a large table comes before its takeover).
const STEP: Duration = Duration::from_secs(120);

/// What the donor hands over.
pub(crate) struct Sources {
    pub(crate) proxy: Arc<mc_proxy::ProxyState>,
    pub(crate) dns: Arc<mc_dns::DnsState>,
    pub(crate) stores: Vec<Arc<Store>>,
    pub(crate) admin: OwnedFd,
    pub(crate) metrics: OwnedFd,
}

struct Ctx {
    sources: Sources,
    busy: AtomicBool,
    taken: Trigger,
    /// When SIGUSR2 last arrived (unix ms), the start of the measured handover.
    signalled: Arc<AtomicU64>,
}

/// The upgrade listener of a running data plane.
pub(crate) struct Donor;

impl Donor {
    /// Listens at `path` and serves successors from a thread. The returned
    /// [`Shutdown`] fires once a successor has taken over.
    pub(crate) fn start(
        path: &Path,
        sources: Sources,
        signalled: Arc<AtomicU64>,
    ) -> std::io::Result<Shutdown> {
        let listener = ChannelListener::bind(path)?;
        let (taken, handed_over) = mc_kit::shutdown::channel();
        let ctx = Arc::new(Ctx {
            sources,
            busy: AtomicBool::new(false),
            taken,
            signalled,
        });
        std::thread::Builder::new()
            .name("upgrade".into())
            .spawn(move || {
                loop {
                    match listener.accept() {
                        Ok(ch) => {
                            let ctx = ctx.clone();
                            let spawned = std::thread::Builder::new()
                                .name("upgrade-conn".into())
                                .spawn(move || converse(&ctx, &ch));
                            if let Err(e) = spawned {
                                tracing::error!(error = %e, "upgrade: cannot start a thread");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "upgrade: accept failed");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok(handed_over)
    }
}

fn send(ch: &Channel, msg: &Msg, fds: &[BorrowedFd<'_>]) -> Result<(), String> {
    ch.send(&msg.encode(), fds)
        .map_err(|e| format!("sending to the successor: {e}"))
}

fn recv(ch: &Channel) -> Result<Msg, String> {
    let (bytes, _) = ch
        .recv()
        .map_err(|e| format!("the successor went away: {e}"))?;
    Msg::decode(&bytes).map_err(|e| e.to_string())
}

pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One successor's conversation, on its own thread.
fn converse(ctx: &Ctx, ch: &Channel) {
    let hello_at = Instant::now();
    let hello_ms = unix_ms();
    if let Err(e) = ch.set_timeout(Some(STEP)) {
        tracing::warn!(error = %e, "upgrade: cannot bound the conversation");
    }
    let pid = match recv(ch) {
        Ok(Msg::Hello { version, pid }) if version == VERSION => pid,
        Ok(Msg::Hello { version, .. }) => {
            let reason = format!("upgrade protocol {version}; this process speaks {VERSION}");
            let _ = send(ch, &Msg::Refused { reason }, &[]);
            return;
        }
        Ok(other) => {
            tracing::warn!(?other, "upgrade: expected hello");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "upgrade: no hello");
            return;
        }
    };
    if ctx.busy.swap(true, Ordering::SeqCst) {
        let reason = "another upgrade is in progress".to_owned();
        tracing::warn!(successor = pid, "upgrade refused: {reason}");
        let _ = send(ch, &Msg::Refused { reason }, &[]);
        return;
    }
    tracing::info!(successor = pid, "upgrade: handing sockets to the successor");
    let released = match handover(ctx, ch) {
        Ok(ms) => {
            // A signal within the last minute started this upgrade.
            let since = match ctx.signalled.swap(0, Ordering::SeqCst) {
                0 => hello_ms,
                t if hello_ms.saturating_sub(t) < 60_000 => t,
                _ => hello_ms,
            };
            tracing::info!(
                successor = pid,
                handover_ms = ms.saturating_sub(since),
                since_hello_ms = hello_at.elapsed().as_millis(),
                "upgrade: the successor accepts; stopping accepting and draining"
            );
            let _ = send(
                ch,
                &Msg::Done {
                    handover_ms: ms.saturating_sub(since),
                },
                &[],
            );
            ctx.taken.fire();
            return;
        }
        Err((released, e)) => {
            tracing::error!(successor = pid, error = %e, "upgrade failed; still serving");
            let _ = send(ch, &Msg::Failed { reason: e }, &[]);
            released
        }
    };
    if released {
        tracing::error!(
            "the stores were handed to the failed successor: traffic is served as before, \
             admin changes are refused until an upgrade completes"
        );
    }
    ctx.busy.store(false, Ordering::SeqCst);
}

/// The steps after the hello. Ok: the takeover time (unix ms). Err: whether
/// the stores had been released, and why it failed.
fn handover(ctx: &Ctx, ch: &Channel) -> Result<u64, (bool, String)> {
    let s = &ctx.sources;
    let mut list: Vec<(SocketKind, OwnedFd)> = Vec::new();
    let dup = |fd: BorrowedFd<'_>| fd.try_clone_to_owned();
    let mut add = |kind: SocketKind, fd: std::io::Result<OwnedFd>| match fd {
        Ok(fd) => {
            list.push((kind, fd));
            Ok(())
        }
        Err(e) => Err((false, format!("duplicating a socket: {e}"))),
    };
    for (listener, address, sockets) in s.proxy.listening_sockets() {
        for socket in sockets {
            add(
                SocketKind::Proxy {
                    listener: listener.clone(),
                    address,
                },
                Ok(OwnedFd::from(socket)),
            )?;
        }
    }
    for (address, tcp, udp) in s.dns.listening_sockets() {
        for t in tcp {
            add(SocketKind::DnsTcp { address }, Ok(OwnedFd::from(t)))?;
        }
        for u in udp {
            add(SocketKind::DnsUdp { address }, Ok(OwnedFd::from(u)))?;
        }
    }
    add(SocketKind::Admin, dup(s.admin.as_fd()))?;
    add(SocketKind::Metrics, dup(s.metrics.as_fd()))?;
    let total = list.len();
    let mut chunks = list.chunks(MAX_FDS).peekable();
    while let Some(chunk) = chunks.next() {
        let kinds = chunk.iter().map(|(k, _)| k.clone()).collect();
        let fds: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
        let msg = Msg::Sockets {
            sockets: kinds,
            last: chunks.peek().is_none(),
        };
        send(ch, &msg, &fds).map_err(|e| (false, e))?;
    }
    drop(list);
    tracing::info!(sockets = total, "upgrade: sockets sent");
    match recv(ch).map_err(|e| (false, e))? {
        Msg::Release => {}
        Msg::Failed { reason } => return Err((false, format!("the successor gave up: {reason}"))),
        other => return Err((false, format!("expected release, got {other:?}"))),
    }
    // From here this process never touches its stores again.
    for store in &s.stores {
        if let Err(e) = store.release() {
            return Err((true, format!("releasing {}: {e}", store.path().display())));
        }
    }
    send(ch, &Msg::Released, &[]).map_err(|e| (true, e))?;
    match recv(ch).map_err(|e| (true, e))? {
        Msg::Takeover { accepting } => {
            tracing::info!(accepting, "upgrade: the successor is accepting");
            Ok(unix_ms())
        }
        Msg::Failed { reason } => Err((true, format!("the successor failed: {reason}"))),
        other => Err((true, format!("expected takeover, got {other:?}"))),
    }
}
