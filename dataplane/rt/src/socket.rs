//! Sockets: per-worker `SO_REUSEPORT` listeners, and closing with RST.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Binds `count` listening sockets on `addr` with identical options and
/// `SO_REUSEPORT`, so the kernel spreads connections across workers. Binding
/// happens here, on the caller's thread, so an address in use is reported
/// to whoever asked for the listener.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        // Port 0: every further socket must join the port the kernel picked.
        addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("listener has no IP address"))?;
        out.push(socket.into());
    }
    Ok(out)
}

/// Binds `count` UDP sockets on `addr` with identical options and
/// `SO_REUSEPORT` (one per worker; the kernel spreads datagrams across them
/// by source address and port). Like [`bind_reuseport`], binding happens on
/// the caller's thread, and port 0 makes every socket share the port the
/// kernel picked for the first.
pub fn bind_udp_reuseport(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("UDP socket has no IP address"))?;
        out.push(socket.into());
    }
    Ok(out)
}

/// Sets `SO_LINGER {on, 0}` so that dropping the socket sends a TCP RST
/// instead of a FIN: the peer sees ECONNRESET, no TLS alert, no bytes.
pub fn set_reset_on_close(stream: &impl AsRawFd) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    // SAFETY: `fd` is the open descriptor owned by `stream`, which is borrowed
    // for this whole call, so the descriptor stays open and is not reused while
    // the BorrowedFd exists; the BorrowedFd does not outlive this function.
    // Tested by `tests::reset_on_close_makes_peer_see_econnreset`.
    #[allow(unsafe_code)]
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    SockRef::from(&borrowed).set_linger(Some(std::time::Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn reuseport_sockets_share_one_port() {
        let ls = bind_reuseport("127.0.0.1:0".parse().expect("addr"), 3, 128).expect("bind");
        assert_eq!(ls.len(), 3);
        let ports: Vec<_> = ls
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        assert!(ports.iter().all(|p| *p == ports[0] && *p != 0), "{ports:?}");
    }

    #[test]
    fn udp_reuseport_sockets_share_one_port() {
        let ss = bind_udp_reuseport("127.0.0.1:0".parse().expect("addr"), 2).expect("bind");
        assert_eq!(ss.len(), 2);
        let port = ss[0].local_addr().expect("addr").port();
        assert!(port != 0 && ss[1].local_addr().expect("addr").port() == port);
        // A datagram to the shared port reaches one of them.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
        client.send_to(b"x", ("127.0.0.1", port)).expect("send");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = [0_u8; 4];
        let got = ss.iter().filter(|s| s.recv_from(&mut buf).is_ok()).count();
        assert_eq!(got, 1);
    }

    #[test]
    fn reset_on_close_makes_peer_see_econnreset() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        set_reset_on_close(&server).expect("linger");
        drop(server);
        let mut buf = [0_u8; 16];
        let err = client.read(&mut buf).expect_err("a reset, not EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
