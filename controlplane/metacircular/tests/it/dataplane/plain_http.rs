//! The plain-HTTP listener (kind `http`): 308 to https keeping path and
//! query, ACME HTTP-01 challenges relayed to the hostname's responder, 404
//! for the rest, bounded and timed request heads, the firewall in front.
//! Every scenario on both I/O drivers, real curl, 127.0.0.0/8 only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::peers::{Dataplane, free_port};
use crate::support::curl;

/// An ACME responder stand-in: answers every request with `body` and keeps
/// each request head it saw.
pub(super) fn responder(body: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind responder");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            heads
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// A TLS listener `public` and an http listener `plain`, in the file's syntax.
pub(super) fn listeners(tls: u16, plain: u16) -> String {
    format!(
        "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{tls}\"\n\
         [[proxy.listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:{plain}\"\nkind = \"http\"\n"
    )
}

/// `curl -D -` against the plain listener for `host`: status and headers+body.
pub(super) fn get(port: u16, host: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let mut args = vec![
        "-D".to_owned(),
        "-".to_owned(),
        "--resolve".to_owned(),
        format!("{host}:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(format!("http://{host}:{port}{path}"));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs)
}

fn plain_listener_redirects_relays_challenges_and_refuses(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (acme, seen) = responder("token-abc.thumbprint");
    let (tls, plain) = (free_port(), free_port());
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "{}client_hello_timeout = \"1s\"\n\
             [[proxy.routes]]\nlistener = \"public\"\nhostname = \"site.test\"\nbackends = [\"127.0.0.1:9\"]\n\
             [[proxy.routes]]\nlistener = \"public\"\nhostname = \"*.wild.test\"\nbackends = [\"127.0.0.1:9\"]\n\
             [[proxy.routes]]\nlistener = \"plain\"\nhostname = \"site.test\"\nbackends = [\"127.0.0.1:{acme}\"]\n\
             [proxy.firewall]\nblock_ips = [\"127.0.0.3\"]\n",
            listeners(tls, plain)
        ),
    );

    // Redirect: path and query kept, the TLS listener's port in the URL.
    let (code, text) = get(plain, "site.test", "/a/b?x=1&y=%20z", &[]);
    assert_eq!(code, 308, "{text}");
    let location = text
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no location: {text}"))
        .trim();
    assert_eq!(location, format!("https://site.test:{tls}/a/b?x=1&y=%20z"));
    let (code, text) = get(plain, "A.Wild.Test", "/", &[]);
    assert_eq!(code, 308, "{text}");
    assert!(
        text.contains(&format!("location: https://a.wild.test:{tls}/\r\n")),
        "{text}"
    );

    // ACME HTTP-01: the challenge reaches the hostname's responder, once,
    // with the client's keep-alive replaced by `connection: close`.
    let (code, text) = get(
        plain,
        "site.test",
        "/.well-known/acme-challenge/tok-123",
        &[
            "-H",
            "connection: keep-alive",
            "-H",
            "x-forwarded-for: 6.6.6.6",
        ],
    );
    assert_eq!(code, 200, "{text}");
    assert!(text.ends_with("token-abc.thumbprint"), "{text}");
    let heads = seen.lock().expect("lock").clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /.well-known/acme-challenge/tok-123 http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("connection: close\r\n") && !head.contains("keep-alive"),
        "{head}"
    );
    assert!(
        head.contains("x-forwarded-for: 127.0.0.1\r\n") && !head.contains("6.6.6.6"),
        "forged forwarding headers are dropped: {head}"
    );
    // A challenge for a hostname without a responder is not relayed anywhere.
    let (code, _) = get(plain, "x.wild.test", "/.well-known/acme-challenge/t", &[]);
    assert_eq!(code, 308);
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // Everything else: 404.
    let (code, text) = get(plain, "unknown.test", "/", &[]);
    assert_eq!(code, 404, "{text}");
    let (code, _) = get(plain, "unknown.test", "/.well-known/acme-challenge/t", &[]);
    assert_eq!(code, 404);

    // An oversized head: 431, nothing relayed.
    let big = format!("x-big: {}", "a".repeat(16 * 1024));
    let (code, _) = get(
        plain,
        "site.test",
        "/.well-known/acme-challenge/big",
        &["-H", &big],
    );
    assert_eq!(code, 431);
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // A head that never completes: 408 once the listener's header timeout passes.
    let mut slow = TcpStream::connect(("127.0.0.1", plain)).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    slow.write_all(b"GET /.well-known/acme-challenge/slow HTTP/1.1\r\nHost: site.test\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // The firewall applies as on TLS listeners: a blocked client is reset.
    let (code, _) = get(plain, "site.test", "/", &["--interface", "127.0.0.3"]);
    assert_eq!(code, 0, "blocked client got an answer");
    assert!(dp.blocks("ip") >= 1);

    // Routes on an http listener name responders: L7 is refused, and a
    // listener made from mcctl serves the same way.
    let out = dp.mcctl(&[
        "proxy",
        "routes",
        "add",
        "l7.test",
        "--listener",
        "plain",
        "--backend",
        "127.0.0.1:9",
        "--mode",
        "l7",
        "--cert",
        "none",
    ]);
    assert!(
        !out.status.success(),
        "L7 route on an http listener accepted"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("http listener"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = free_port();
    dp.ok(&[
        "proxy",
        "listeners",
        "add",
        "plain2",
        "--kind",
        "http",
        "--address",
        &format!("127.0.0.1:{second}"),
    ]);
    let listing = dp.ok(&["proxy", "listeners", "list"]);
    assert!(
        listing.contains("plain2") && listing.contains("http"),
        "{listing}"
    );
    let (code, text) = get(second, "site.test", "/z", &[]);
    assert_eq!(code, 308, "{text}");
}
both_drivers!(plain_listener_redirects_relays_challenges_and_refuses);
