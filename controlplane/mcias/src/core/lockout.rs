//! Who a password lockout locks out.
//!
//! Repeated failed logins lock the account (`lockout_after`, `lockout`,
//! doubling): that stops a password being guessed from many addresses.
//! But anyone can fail on purpose, so a lock that applied everywhere would
//! let anyone lock the sole admin out. The lock therefore applies only to
//! sources the account has not signed in from: a success records its
//! source (IPv4 address, IPv6 /64) among the last [`MAX_KNOWN`], and from
//! those the account still signs in while locked; each address stays
//! bounded by the per-address limits (`failures_per_minute_per_ip`).
//! Passkey logins are not subject to the password lockout at all.
//!
//! While locked, a login from elsewhere is answered exactly like a wrong
//! password (401, same message), so the reply does not tell which
//! usernames exist; the audit log records `locked`.

use std::net::IpAddr;

use crate::core::Caller;
use crate::model::Account;

/// How many sign-in sources an account remembers.
pub(crate) const MAX_KNOWN: usize = 4;

/// The source as remembered: the address, or an IPv6 address's /64.
fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Whether the lock of `account` (if any) applies to `caller`.
pub(crate) fn applies(account: &Account, caller: &Caller) -> bool {
    caller
        .source
        .is_none_or(|ip| !account.known_sources.contains(&key(ip)))
}

/// Remembers the source of a successful login (newest first, bounded).
pub(crate) fn remember(account: &mut Account, caller: &Caller) {
    if let Some(ip) = caller.source {
        let k = key(ip);
        account.known_sources.retain(|s| *s != k);
        account.known_sources.insert(0, k);
        account.known_sources.truncate(MAX_KNOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_remembered_by_address_or_prefix_and_bounded() {
        let mut a: Account = serde_json::from_value(serde_json::json!({
            "id": "a", "username": "alice", "account_type": "human", "status": "active",
            "roles": [], "tags": [], "password_hash": "", "created_at": 0, "last_login": 0,
            "failed_logins": 0, "locked_until": 0, "token_generation": 0,
        }))
        .expect("account");
        let at = |s: &str| Caller {
            principal: None,
            source: Some(s.parse().expect("ip")),
        };
        assert!(applies(&a, &at("192.0.2.1")), "nothing known yet");
        assert!(applies(&a, &Caller::default()), "no address: locked");
        remember(&mut a, &at("2001:db8:1:2::5"));
        assert!(!applies(&a, &at("2001:db8:1:2:ffff::1")), "same /64");
        assert!(applies(&a, &at("2001:db8:1:3::5")), "another /64");
        for i in 1..=10 {
            remember(&mut a, &at(&format!("192.0.2.{i}")));
        }
        assert_eq!(a.known_sources.len(), MAX_KNOWN);
        assert!(!applies(&a, &at("192.0.2.10")));
        assert!(applies(&a, &at("192.0.2.1")), "the oldest is forgotten");
    }
}
