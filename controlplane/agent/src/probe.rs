//! Health probes for a cutover: TCP connect, or an HTTP/1.1 GET whose
//! status must be 2xx (the response head is parsed by `httparse`, read up to
//! a bound). A probe is retried until its deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::Health;

/// Largest response head read from a probed service.
const MAX_HEAD: usize = 16 * 1024;
/// One attempt's limit; the interval between attempts.
const ATTEMPT: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(200);

/// One attempt: `Ok` when healthy, else why not.
pub(crate) async fn once(health: &Health, addr: SocketAddr) -> Result<(), String> {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let Health::Http(path) = health else {
            return Ok(());
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nuser-agent: mc-agent\r\nconnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before a response".to_owned());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    let code = resp.code.unwrap_or(0);
                    return if (200..300).contains(&code) {
                        Ok(())
                    } else {
                        Err(format!("GET {path} answered {code}"))
                    };
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => return Err("response head too large".to_owned()),
                Err(e) => return Err(format!("bad HTTP response: {e}")),
            }
        }
    };
    tokio::time::timeout(ATTEMPT, work)
        .await
        .unwrap_or_else(|_| Err("probe timed out".to_owned()))
}

/// Retries [`once`] until it passes or `deadline` passes; the last reason.
pub(crate) async fn until(
    health: &Health,
    addr: SocketAddr,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let r = once(health, addr).await;
        if r.is_ok() || Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(reply: &'static [u8]) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut b = [0_u8; 1024];
                let _ = s.read(&mut b).await;
                let _ = s.write_all(reply).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_needs_2xx_tcp_needs_a_listener() {
        let ok = serve(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let bad = serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        let junk = serve(b"\x16\x03\x01 not http").await;
        let http = Health::Http("/healthz".into());
        assert_eq!(once(&http, ok).await, Ok(()));
        assert!(once(&http, bad).await.expect_err("503").contains("503"));
        assert!(once(&http, junk).await.is_err());
        assert_eq!(once(&Health::Tcp, bad).await, Ok(()));
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        assert!(once(&Health::Tcp, closed).await.is_err());
        assert!(
            until(&Health::Tcp, closed, Duration::from_millis(300))
                .await
                .is_err()
        );
    }
}
