//! Passing sockets between processes: the binary upgrade's channel.
//!
//! A `SOCK_SEQPACKET` unix socket, so every [`Channel::send`] arrives as one
//! message with the descriptors attached to it (`SCM_RIGHTS`), never split or
//! merged with the next. Everything goes through rustix's safe wrappers: a
//! received descriptor arrives as an [`OwnedFd`] (close-on-exec), so none can
//! leak or be closed twice.
//!
//! Invariants: a message carries at most [`MAX_FDS`] descriptors and
//! [`MAX_MESSAGE`] bytes; a truncated message (bytes or descriptors) is an
//! error, never a partial answer; the listening socket is 0600 and appears at
//! its path atomically (bound beside it, then renamed over it).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// Descriptors per message: below the kernel's `SCM_MAX_FD` (253).
pub const MAX_FDS: usize = 200;
/// Bytes per message.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Runs `f` again while a signal interrupts it (a socket with a timeout is
/// never restarted by the kernel, `SA_RESTART` or not).
fn again<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => {}
            other => return Ok(other?),
        }
    }
}

/// One end of an upgrade conversation.
#[derive(Debug)]
pub struct Channel(OwnedFd);

/// The listening end: the running process waits here for its successor.
#[derive(Debug)]
pub struct ChannelListener(OwnedFd);

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

impl ChannelListener {
    /// Listens at `path` (0600). The socket is bound at a temporary name in
    /// the same directory and renamed over `path`, so a client never finds
    /// the path missing: it reaches either the previous listener or this one.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let fd = seqpacket()?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        rustix::net::bind(&fd, &SocketAddrUnix::new(&tmp)?)?;
        let placed = rustix::fs::chmod(&tmp, rustix::fs::Mode::from_raw_mode(0o600))
            .map_err(io::Error::from)
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        rustix::net::listen(&fd, 4)?;
        Ok(Self(fd))
    }

    /// Waits for the next client (blocking).
    pub fn accept(&self) -> io::Result<Channel> {
        Ok(Channel(again(|| {
            rustix::net::accept_with(&self.0, SocketFlags::CLOEXEC)
        })?))
    }
}

impl Channel {
    /// Connects to the listener at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = seqpacket()?;
        rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
        Ok(Self(fd))
    }

    /// Bounds every later send and receive by `timeout` (`None`: wait forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        use rustix::net::sockopt::{Timeout, set_socket_timeout};
        set_socket_timeout(&self.0, Timeout::Recv, timeout)?;
        set_socket_timeout(&self.0, Timeout::Send, timeout)?;
        Ok(())
    }

    /// Sends one message: `bytes` with `fds` attached (the peer gets its own copies).
    pub fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if fds.len() > MAX_FDS || bytes.len() > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "upgrade message too large",
            ));
        }
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other(
                "descriptors do not fit the control buffer",
            ));
        }
        let sent = again(|| {
            rustix::net::sendmsg(
                &self.0,
                &[IoSlice::new(bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
        })?;
        if sent != bytes.len() {
            return Err(io::Error::other("upgrade message sent in part"));
        }
        Ok(())
    }

    /// Receives one message and the descriptors attached to it. The peer
    /// closing the channel is `UnexpectedEof`.
    pub fn recv(&self) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        let mut buf = vec![0_u8; MAX_MESSAGE];
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = again(|| {
            rustix::net::recvmsg(
                &self.0,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
        })?;
        // Take the descriptors first, so they are owned (and closed on an error below).
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        if got.flags.contains(ReturnFlags::CTRUNC) || got.flags.contains(ReturnFlags::TRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "upgrade message truncated",
            ));
        }
        if got.bytes == 0 && fds.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.truncate(got.bytes);
        Ok((buf, fds))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Whether `fd` is a listening TCP socket (what a received proxy or DNS TCP
/// descriptor must be before a worker accepts on it).
pub fn is_listening_stream(fd: BorrowedFd<'_>) -> bool {
    matches!(
        rustix::net::sockopt::socket_type(fd),
        Ok(SocketType::STREAM)
    ) && matches!(rustix::net::sockopt::socket_acceptconn(fd), Ok(true))
}

/// Whether `fd` is a datagram socket.
pub fn is_datagram(fd: BorrowedFd<'_>) -> bool {
    matches!(rustix::net::sockopt::socket_type(fd), Ok(SocketType::DGRAM))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_listening_socket_passed_over_the_channel_accepts_in_the_receiver() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("up.sock");
        let listener = ChannelListener::bind(&path).expect("bind");
        let mode = std::fs::metadata(&path).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let addr = tcp.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let ch = listener.accept().expect("accept");
            ch.send(b"one", &[tcp.as_fd()]).expect("send");
            // The sender's copy closes; the receiver's keeps the socket alive.
            drop(tcp);
            ch
        });
        let client = Channel::connect(&path).expect("connect");
        client
            .set_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let (bytes, mut fds) = client.recv().expect("recv");
        assert_eq!(bytes, b"one");
        assert_eq!(fds.len(), 1);
        let server_end = server.join().expect("join");
        let fd = fds.pop().expect("fd");
        assert!(is_listening_stream(fd.as_fd()));
        assert!(!is_datagram(fd.as_fd()));
        let got = std::net::TcpListener::from(fd);
        let mut c = std::net::TcpStream::connect(addr).expect("connect tcp");
        let (mut s, _) = got.accept().expect("accept tcp");
        s.write_all(b"hi").expect("write");
        let mut buf = [0_u8; 2];
        c.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"hi");
        // The peer closing is an EOF, not an empty message.
        drop(server_end);
        let err = client.recv().expect_err("eof");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn oversized_messages_are_refused_before_sending() {
        let (a, _b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("pair");
        let ch = Channel(a);
        let err = ch
            .send(&vec![0_u8; MAX_MESSAGE + 1], &[])
            .expect_err("too big");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
