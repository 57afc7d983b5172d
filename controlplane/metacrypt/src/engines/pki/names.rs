//! Name checks: DNS syntax and the role's domain rules (exact, subdomains,
//! wildcard, localhost, IP SANs). Pure functions.
//!
//! Invariant: a name passes only if it is syntactically a hostname (or
//! `*.` + one) and the role allows it; the error names the name.

use std::net::IpAddr;

use super::model::Role;
use crate::error::CryptError;

/// At most this many names (CN + DNS + IP) per certificate.
pub(crate) const MAX_NAMES: usize = 100;

/// A lowercase hostname: 1–253 bytes, labels 1–63 of `[a-z0-9-]`, not
/// starting or ending with `-`.
pub(crate) fn check_dns(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("1 to 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("labels are 1 to 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("labels are [a-z0-9-]");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels do not start or end with -");
        }
    }
    Ok(())
}

/// Whether `role` allows the (non-wildcard) hostname `name`.
fn host_allowed(role: &Role, name: &str) -> bool {
    if name == "localhost" || name.ends_with(".localhost") {
        return role.allow_localhost;
    }
    role.allowed_domains.iter().any(|d| {
        (role.allow_bare_domains && name == d)
            || (role.allow_subdomains
                && name.len() > d.len() + 1
                && name.ends_with(d.as_str())
                && name.as_bytes()[name.len() - d.len() - 1] == b'.')
    })
}

/// Checks one DNS name (lowercased) against syntax and the role.
pub(crate) fn check_dns_name(role: &Role, name: &str) -> Result<String, CryptError> {
    let lower = name.to_ascii_lowercase();
    let (wild, host) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    check_dns(host).map_err(|m| CryptError::invalid("alt_names", format!("{name}: {m}")))?;
    if wild && !role.allow_wildcard {
        return Err(CryptError::invalid(
            "alt_names",
            format!("{name}: the role allows no wildcard names"),
        ));
    }
    // `*.x` needs `x.` + something to be allowed, i.e. subdomains of x.
    let allowed = if wild {
        host_allowed(role, &format!("w.{host}"))
    } else {
        host_allowed(role, host)
    };
    if !allowed {
        return Err(CryptError::invalid(
            "alt_names",
            format!("{name}: not allowed by the role"),
        ));
    }
    Ok(lower)
}

/// The certificate's names: the CN (when a DNS name), DNS alt names and IP
/// SANs, each checked; duplicates dropped; at least one name.
pub(crate) fn check_all(
    role: &Role,
    common_name: &str,
    alt_names: &[String],
    ip_sans: &[String],
) -> Result<(Vec<String>, Vec<IpAddr>), CryptError> {
    if 1 + alt_names.len() + ip_sans.len() > MAX_NAMES + 1 {
        return Err(CryptError::invalid("alt_names", "at most 100 names"));
    }
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let add_ip = |ip: IpAddr, ips: &mut Vec<IpAddr>| -> Result<(), CryptError> {
        if !role.allow_ip_sans {
            return Err(CryptError::invalid(
                "ip_sans",
                format!("{ip}: the role allows no IP SANs"),
            ));
        }
        if !ips.contains(&ip) {
            ips.push(ip);
        }
        Ok(())
    };
    let mut names: Vec<&str> = Vec::new();
    if !common_name.is_empty() {
        names.push(common_name);
    }
    names.extend(alt_names.iter().map(String::as_str));
    for n in names {
        if let Ok(ip) = n.parse::<IpAddr>() {
            add_ip(ip, &mut ips)?;
            continue;
        }
        let n = check_dns_name(role, n)?;
        if !dns.contains(&n) {
            dns.push(n);
        }
    }
    for ip in ip_sans {
        let parsed = ip
            .parse::<IpAddr>()
            .map_err(|_| CryptError::invalid("ip_sans", format!("{ip}: not an IP address")))?;
        add_ip(parsed, &mut ips)?;
    }
    if dns.is_empty() && ips.is_empty() {
        return Err(CryptError::invalid(
            "common_name",
            "a certificate needs a name",
        ));
    }
    Ok((dns, ips))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::pki::model::Role;

    fn role(json: serde_json::Value) -> Role {
        serde_json::from_value::<Role>(json)
            .expect("role")
            .check()
            .expect("valid")
    }

    #[test]
    fn exact_subdomain_and_wildcard_rules() {
        let exact = role(serde_json::json!({"allowed_domains": ["example.test"]}));
        assert!(check_dns_name(&exact, "example.test").is_ok());
        assert!(check_dns_name(&exact, "Example.TEST").is_ok());
        assert!(check_dns_name(&exact, "a.example.test").is_err());
        assert!(check_dns_name(&exact, "*.example.test").is_err());
        assert!(check_dns_name(&exact, "badexample.test").is_err());

        let sub = role(serde_json::json!({
            "allowed_domains": ["example.test"], "allow_subdomains": true,
            "allow_bare_domains": false}));
        assert!(check_dns_name(&sub, "example.test").is_err());
        assert!(check_dns_name(&sub, "a.b.example.test").is_ok());
        assert!(check_dns_name(&sub, "aexample.test").is_err());
        assert!(
            check_dns_name(&sub, "*.example.test").is_err(),
            "no wildcard"
        );

        let wild = role(serde_json::json!({
            "allowed_domains": ["example.test"], "allow_subdomains": true,
            "allow_wildcard": true}));
        assert!(check_dns_name(&wild, "*.example.test").is_ok());
        assert!(check_dns_name(&wild, "*.a.example.test").is_ok());
        assert!(check_dns_name(&wild, "*.other.test").is_err());
        assert!(check_dns_name(&wild, "*.*.example.test").is_err());
    }

    #[test]
    fn syntax_localhost_and_ips() {
        let r = role(serde_json::json!({"allowed_domains": ["example.test"],
            "allow_subdomains": true}));
        for bad in [
            "",
            "-a.example.test",
            "a..example.test",
            "a_b.example.test",
            "é.example.test",
        ] {
            assert!(check_dns_name(&r, bad).is_err(), "{bad}");
        }
        assert!(check_dns_name(&r, "localhost").is_err());
        assert!(check_all(&r, "a.example.test", &[], &["127.0.0.1".to_owned()]).is_err());
        let ip = role(serde_json::json!({"allowed_domains": ["example.test"],
            "allow_ip_sans": true, "allow_localhost": true}));
        let (dns, ips) = check_all(
            &ip,
            "localhost",
            &["127.0.0.1".to_owned()],
            &["::1".to_owned()],
        )
        .expect("ok");
        assert_eq!(dns, vec!["localhost"]);
        assert_eq!(ips.len(), 2);
        assert!(check_all(&ip, "", &[], &[]).is_err(), "no name");
        assert!(check_all(&ip, "", &[], &["nope".to_owned()]).is_err());
    }
}
