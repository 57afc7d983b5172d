//! The new process's side (`mcd dataplane --upgrade`): ask the running
//! process for its sockets, then for its stores, then take over.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use mc_rt::handover::{Channel, is_datagram, is_listening_stream};

use super::protocol::{Msg, SocketKind, VERSION};

/// How long the donor may take to answer one step.
const STEP: Duration = Duration::from_secs(60);

/// The sockets received, sorted for the engines that take them.
#[derive(Default)]
pub(crate) struct Inherited {
    pub(crate) proxy: mc_proxy::admin::HandedOver,
    pub(crate) dns: mc_dns::HandedOver,
    pub(crate) admin: Option<std::os::unix::net::UnixListener>,
    pub(crate) metrics: Option<std::net::TcpListener>,
    pub(crate) count: usize,
}

/// A conversation with the running process.
pub(crate) struct Successor {
    ch: Channel,
}

fn recv(ch: &Channel) -> Result<(Msg, Vec<OwnedFd>), String> {
    let (bytes, fds) = ch
        .recv()
        .map_err(|e| format!("the running data plane went away: {e}"))?;
    Ok((Msg::decode(&bytes).map_err(|e| e.to_string())?, fds))
}

impl Successor {
    /// Connects to the upgrade socket at `path` and receives every socket.
    pub(crate) fn connect(path: &Path) -> Result<(Self, Inherited), String> {
        let ch = Channel::connect(path).map_err(|e| {
            format!(
                "no running data plane to upgrade at {}: {e}",
                path.display()
            )
        })?;
        ch.set_timeout(Some(STEP))
            .map_err(|e| format!("upgrade socket: {e}"))?;
        let hello = Msg::Hello {
            version: VERSION,
            pid: std::process::id(),
        };
        ch.send(&hello.encode(), &[])
            .map_err(|e| format!("upgrade socket: {e}"))?;
        let mut got = Inherited::default();
        loop {
            let (msg, fds) = recv(&ch)?;
            match msg {
                Msg::Sockets { sockets, last } => {
                    if sockets.len() != fds.len() {
                        return Err(format!(
                            "upgrade: {} descriptions for {} sockets",
                            sockets.len(),
                            fds.len()
                        ));
                    }
                    for (kind, fd) in sockets.into_iter().zip(fds) {
                        adopt(&mut got, kind, fd)?;
                    }
                    if last {
                        break;
                    }
                }
                Msg::Refused { reason } => return Err(format!("upgrade refused: {reason}")),
                other => return Err(format!("upgrade: unexpected {other:?}")),
            }
        }
        Ok((Self { ch }, got))
    }

    /// Asks the running process to release its stores.
    pub(crate) fn release(&self) -> Result<(), String> {
        self.send(&Msg::Release)?;
        match recv(&self.ch)?.0 {
            Msg::Released => Ok(()),
            Msg::Failed { reason } => Err(format!("the running data plane: {reason}")),
            other => Err(format!("upgrade: unexpected {other:?}")),
        }
    }

    /// Tells the running process to stop accepting; answers the measured
    /// handover time (milliseconds).
    pub(crate) fn takeover(&self, accepting: usize) -> Result<u64, String> {
        self.send(&Msg::Takeover { accepting })?;
        match recv(&self.ch)?.0 {
            Msg::Done { handover_ms } => Ok(handover_ms),
            Msg::Failed { reason } => Err(format!("the running data plane: {reason}")),
            other => Err(format!("upgrade: unexpected {other:?}")),
        }
    }

    /// Tells the running process this upgrade is abandoned.
    pub(crate) fn fail(&self, reason: &str) {
        let _ = self.send(&Msg::Failed {
            reason: reason.to_owned(),
        });
    }

    fn send(&self, msg: &Msg) -> Result<(), String> {
        self.ch
            .send(&msg.encode(), &[])
            .map_err(|e| format!("upgrade socket: {e}"))
    }
}

/// Checks a received descriptor is what its description says, and files it.
fn adopt(got: &mut Inherited, kind: SocketKind, fd: OwnedFd) -> Result<(), String> {
    let stream_ok = is_listening_stream(fd.as_fd());
    let bad = || format!("upgrade: a received socket is not a {kind:?}");
    match &kind {
        SocketKind::Proxy { listener, .. } => {
            if !stream_ok {
                return Err(bad());
            }
            got.proxy
                .push(listener.clone(), std::net::TcpListener::from(fd));
        }
        SocketKind::DnsTcp { address } => {
            if !stream_ok {
                return Err(bad());
            }
            got.dns.add_tcp(*address, std::net::TcpListener::from(fd));
        }
        SocketKind::DnsUdp { address } => {
            if !is_datagram(fd.as_fd()) {
                return Err(bad());
            }
            got.dns.add_udp(*address, std::net::UdpSocket::from(fd));
        }
        SocketKind::Admin => {
            if !stream_ok {
                return Err(bad());
            }
            got.admin = Some(std::os::unix::net::UnixListener::from(fd));
        }
        SocketKind::Metrics => {
            if !stream_ok {
                return Err(bad());
            }
            got.metrics = Some(std::net::TcpListener::from(fd));
        }
    }
    got.count += 1;
    Ok(())
}
