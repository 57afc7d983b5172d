//! Backend host names are resolved when a route is saved through the admin
//! API, so a name that does not resolve is refused then, not discovered later
//! as a backend that is always down.
//!
//! Invariant: every name in one request is looked up at most once, each
//! lookup and the whole check are bounded in time, and nothing is written
//! before the check passes. IP literals need no lookup. Names the config file
//! gives are not checked here (a DNS outage must not stop the proxy
//! starting); the worker counts a name that stops resolving as down.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::{Backend, Invalid};

/// One lookup may take this long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// All the lookups of one request together may take this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Refuses the first backend (in request order) whose host name does not
/// resolve; each backend comes with the field that names it in the request.
pub(crate) async fn check_resolve(backends: Vec<(String, &Backend)>) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    let work = async {
        for (field, b) in backends {
            if b.socket_addr().is_some() || !seen.insert(b.host.clone()) {
                continue;
            }
            let found = match resolves(b) {
                Ok(()) => lookup(b).await,
                Err(m) => Err(m),
            };
            found.map_err(|m| Invalid::new(field, m))?;
        }
        Ok::<(), Invalid>(())
    };
    match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(Invalid::new(
            "backends",
            format!(
                "resolving the backends' host names took longer than {}s; use IP addresses or fewer names",
                CHECK_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Names that can never resolve are refused without asking DNS.
fn resolves(b: &Backend) -> Result<(), String> {
    // RFC 6761 §6.4: `.invalid` never resolves.
    if b.host == "invalid" || b.host.ends_with(".invalid") {
        return Err(not_found(b, "`.invalid` names never resolve (RFC 6761)"));
    }
    Ok(())
}

async fn lookup(b: &Backend) -> Result<(), String> {
    let found = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        tokio::net::lookup_host((b.host.as_str(), b.port)),
    )
    .await;
    match found.map(|r| r.map(|mut addrs| addrs.next().is_some())) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(not_found(b, "it has no addresses")),
        Ok(Err(e)) => Err(not_found(b, &e.to_string())),
        Err(_) => Err(not_found(
            b,
            &format!("no answer within {}s", LOOKUP_TIMEOUT.as_secs()),
        )),
    }
}

fn not_found(b: &Backend, why: &str) -> String {
    format!(
        "`{b}`: host name `{}` does not resolve ({why}); backends are IP addresses or names this node can resolve, checked when the route is saved",
        b.host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Backend {
        Backend::parse(s).expect("parses")
    }

    #[tokio::test]
    async fn literals_and_localhost_pass_invalid_names_are_refused() {
        let ok = [b("127.0.0.1:80"), b("[::1]:443"), b("localhost:8080")];
        check_resolve(
            ok.iter()
                .map(|x| ("route.backends".to_owned(), x))
                .collect(),
        )
        .await
        .expect("resolvable");
        let bad = [b("127.0.0.1:80"), b("nosuchhost.invalid:443")];
        let e = check_resolve(
            bad.iter()
                .map(|x| ("route.backends".to_owned(), x))
                .collect(),
        )
        .await
        .expect_err("refused");
        assert_eq!(e.field, "route.backends");
        assert!(e.message.contains("does not resolve"), "{}", e.message);
        assert!(
            e.message.contains("nosuchhost.invalid:443"),
            "{}",
            e.message
        );
    }
}
