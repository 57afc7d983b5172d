//! The record API's name rule, checked per request after the auth map let
//! the caller in: a human admin may change every name; a system account
//! only names under its own label — account `foo` may change `foo` and
//! any name below it (`www.foo`, `*.foo`) in every zone, i.e. `foo.<zone>`
//! and `*.foo.<zone>`, and nothing else (the original MCNS let "other
//! system accounts" change "only records named after themselves").
//!
//! Default deny: a method the map opens to system accounts must have a
//! name extractor here ([`names`]); one without is refused to every
//! caller but a human admin, and `every_method_open_to_system_accounts_
//! has_a_name_rule` fails.

use mc_service::auth::Principal;
use prost_reflect::{DynamicMessage, Value};

/// The record names (relative, as the request gives them) and their zone
/// that a request changes; `None` when the method has no name rule.
pub(crate) fn names(path: &str, msg: &DynamicMessage) -> Option<Vec<(String, String)>> {
    let field = |m: &DynamicMessage, f: &str| match m.get_field_by_name(f).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    match path {
        "/mc.dns.v1.DnsAdmin/UpsertRecord" => {
            let record = match msg.get_field_by_name("record").as_deref() {
                Some(Value::Message(r)) => r.clone(),
                _ => return Some(vec![(String::new(), String::new())]),
            };
            Some(vec![(field(&record, "zone"), field(&record, "name"))])
        }
        "/mc.dns.v1.DnsAdmin/DeleteRecords" => Some(vec![(field(msg, "zone"), field(msg, "name"))]),
        _ => None,
    }
}

fn human_admin(p: &Principal) -> bool {
    p.account_type == "human" && p.is_admin()
}

/// Whether relative `name` in `zone` is `label` or under it. Names are
/// compared without case and trailing dot; an absolute form ending in the
/// zone is made relative first.
pub(crate) fn under_label(label: &str, zone: &str, name: &str) -> bool {
    let label = label.to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let mut name = name.trim_end_matches('.').to_ascii_lowercase();
    if !zone.is_empty()
        && let Some(rel) = name.strip_suffix(&format!(".{zone}"))
    {
        name = rel.to_owned();
    }
    !label.is_empty() && (name == label || name.ends_with(&format!(".{label}")))
}

/// Ok for a human admin; for anyone else, every name the request changes
/// must be under the caller's own label.
pub(crate) fn check(path: &str, who: &Principal, msg: &DynamicMessage) -> Result<(), String> {
    if human_admin(who) {
        return Ok(());
    }
    let Some(names) = names(path, msg) else {
        return Err(format!("{path}: only a human admin may call this"));
    };
    for (zone, name) in names {
        if !under_label(&who.username, &zone, &name) {
            return Err(format!(
                "account {} may change only {0}.<zone> and names under it, not {name:?} in zone {zone:?}",
                who.username
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mc_proto::dns::v1 as dns;
    use prost::Message;

    use super::*;
    use crate::methods::tests::p;
    use crate::relay::describe::request;

    #[test]
    fn a_label_covers_itself_and_what_is_below_it_only() {
        for ok in [
            "foo",
            "www.foo",
            "*.foo",
            "a.b.foo",
            "FOO",
            "foo.svc.test",
            "foo.svc.test.",
        ] {
            assert!(under_label("foo", "svc.test", ok), "{ok}");
        }
        for no in [
            "", "@", "bar", "foobar", "xfoo", "foo.bar", "foo-x", "svc.test", "oo",
        ] {
            assert!(!under_label("foo", "svc.test", no), "{no}");
        }
        assert!(!under_label("", "svc.test", "x"));
    }

    proptest::proptest! {
        /// A name passes only when it is the label or ends in `.label`
        /// once the zone is taken off.
        #[test]
        fn only_the_label_and_its_subtree_pass(
            label in "[a-z0-9-]{1,12}",
            name in "[a-zA-Z0-9.*@-]{0,30}",
        ) {
            if under_label(&label, "svc.test", &name) {
                let n = name.trim_end_matches('.').to_ascii_lowercase();
                let n = n.strip_suffix(".svc.test").unwrap_or(&n);
                let below = format!(".{label}");
                proptest::prop_assert!(n == label || n.ends_with(&below));
            }
        }
    }

    #[test]
    fn system_accounts_change_only_their_names_and_admins_everything() {
        let up = |name: &str| {
            let r = dns::UpsertRecordRequest {
                record: Some(dns::Record {
                    zone: "svc.test".into(),
                    name: name.into(),
                    ..dns::Record::default()
                }),
            };
            request("/mc.dns.v1.DnsAdmin/UpsertRecord", &r.encode_to_vec()).expect("decode")
        };
        let del = |name: &str| {
            let r = dns::DeleteRecordsRequest {
                zone: "svc.test".into(),
                name: name.into(),
                ..dns::DeleteRecordsRequest::default()
            };
            request("/mc.dns.v1.DnsAdmin/DeleteRecords", &r.encode_to_vec()).expect("decode")
        };
        let web = p("web", "system", &[]);
        let admin = p("root", "human", &["admin"]);
        let robot_admin = p("ci", "system", &["admin"]);
        let u = "/mc.dns.v1.DnsAdmin/UpsertRecord";
        let d = "/mc.dns.v1.DnsAdmin/DeleteRecords";
        assert!(check(u, &web, &up("web")).is_ok());
        assert!(check(u, &web, &up("api.web")).is_ok());
        assert!(check(d, &web, &del("web")).is_ok());
        assert!(check(u, &web, &up("docs")).is_err());
        assert!(check(d, &web, &del("@")).is_err());
        assert!(check(u, &admin, &up("docs")).is_ok());
        assert!(check(u, &robot_admin, &up("docs")).is_err());
        let empty = request(u, &[]).expect("empty");
        assert!(check(u, &web, &empty).is_err());
        // A method without a name rule: admins only.
        let zone = request("/mc.dns.v1.DnsAdmin/DeleteZone", &[]).expect("decode");
        assert!(check("/mc.dns.v1.DnsAdmin/DeleteZone", &web, &zone).is_err());
        assert!(check("/mc.dns.v1.DnsAdmin/DeleteZone", &admin, &zone).is_ok());
    }
}
