//! Host-port allocation from `[ports]`: a port is handed out only when no
//! recorded container holds it, no other allocation of the same request
//! took it, and it can be bound on the publish address right now. Callers
//! hold the agent's operation lock, so two allocations never race.

use std::net::{IpAddr, SocketAddr, TcpListener};

#[derive(Debug, thiserror::Error)]
#[error("no free host port left in {first}-{last}")]
pub(crate) struct Exhausted {
    first: u16,
    last: u16,
}

/// `n` free ports in `first..=last`, starting after a random offset so
/// successive deploys do not reuse the port just released.
pub(crate) fn allocate(
    first: u16,
    last: u16,
    publish: IpAddr,
    held: &[u16],
    n: usize,
) -> Result<Vec<u16>, Exhausted> {
    let span = u32::from(last - first) + 1;
    let start = rand::random::<u32>() % span;
    let mut out = Vec::with_capacity(n);
    for i in 0..span {
        if out.len() == n {
            break;
        }
        let Ok(port) = u16::try_from(u32::from(first) + (start + i) % span) else {
            continue;
        };
        if held.contains(&port) || out.contains(&port) {
            continue;
        }
        if is_free(publish, port) {
            out.push(port);
        }
    }
    if out.len() == n {
        Ok(out)
    } else {
        Err(Exhausted { first, last })
    }
}

/// True when `port` can be bound on `addr` now.
pub(crate) fn is_free(addr: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(addr, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn skips_held_and_bound_ports_and_reports_exhaustion() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let busy = taken.local_addr().expect("addr").port();
        let (first, last) = (busy, busy.saturating_add(3));
        let held = [busy.saturating_add(1)];
        let got = allocate(first, last, lo, &held, 2).expect("two free");
        assert_eq!(got.len(), 2);
        assert!(!got.contains(&busy) && !got.contains(&held[0]), "{got:?}");
        assert_ne!(got[0], got[1]);
        assert!(
            allocate(busy, busy, lo, &[], 1).is_err(),
            "bound port handed out"
        );
        assert!(allocate(first, last, lo, &held, 3).is_err());
    }
}
