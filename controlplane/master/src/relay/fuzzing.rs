//! The relay's decoding of a caller's bytes as one entry point, for the
//! cargo-fuzz target `relay` (`controlplane/master/fuzz`) and the property
//! test below: whatever the bytes, a request of any relayed method is
//! decoded or refused without a panic; its description stays within its
//! bounds; its canonical JSON maps back to a request; and the name rule
//! passes a system account only when every name the request changes is
//! its label or under it.
//!
//! Input layout: byte 0 picks the method, byte 1 the length of the
//! account's label (taken from the following bytes), the rest is the
//! request as it would arrive on the wire.

use mc_service::auth::Principal;

use super::describe::{self, MAX_SUMMARY, MAX_VALUE};
use super::scope;

/// Runs one input through the relay's decoding and asserts its invariants.
pub fn relay_request(data: &[u8]) {
    let methods = crate::dataplane::methods();
    let (Some(pick), Some(len)) = (data.first(), data.get(1)) else {
        return;
    };
    let method = &methods[usize::from(*pick) % methods.len()];
    let rest = &data[2..];
    let split = usize::from(*len % 16).min(rest.len());
    let (label, bytes) = rest.split_at(split);
    let label = String::from_utf8_lossy(label).into_owned();
    // The answer path decodes what a data plane sends: never a panic.
    let _ = describe::response_to_json(method, bytes);
    let Ok(msg) = describe::request(method, bytes) else {
        return;
    };
    assert!(describe::summary(&msg).len() <= MAX_SUMMARY + 3);
    assert!(describe::target(&msg).len() <= 2 * (MAX_VALUE + 3) + 1);
    if let Ok(json) = serde_json::to_value(&msg) {
        // Canonical JSON of a decoded request is a request again (REST twin).
        let _ = describe::request_from_json(method, &json);
    }
    let who = Principal {
        account_id: label.clone(),
        username: label.clone(),
        account_type: "system".to_owned(),
        roles: vec!["admin".to_owned()],
        tags: Vec::new(),
        jti: "fuzz".to_owned(),
        expires_at: i64::MAX,
        scopes: Vec::new(),
    };
    if scope::check(method, &who, &msg).is_ok() {
        let names = scope::names(method, &msg).expect("a passing method has a name rule");
        for (zone, name) in names {
            assert!(
                scope::under_label(&label, &zone, &name),
                "{label} passed for {name:?} in {zone:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use mc_proto::dns::v1 as dns;
    use prost::Message;

    proptest::proptest! {
        /// Arbitrary bytes for any relayed method.
        #[test]
        fn any_input_keeps_the_relays_invariants(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..800),
        ) {
            super::relay_request(&data);
        }

        /// Well-formed record changes with arbitrary names: the rule holds
        /// for the names a caller actually sends.
        #[test]
        fn record_changes_pass_only_under_the_label(
            label in "[a-z]{1,6}",
            name in "[a-zA-Z*.]{0,20}",
            zone in "[a-z.]{0,12}",
            delete in proptest::prelude::any::<bool>(),
        ) {
            let methods = crate::dataplane::methods();
            let (path, bytes) = if delete {
                let r = dns::DeleteRecordsRequest { zone, name, ..Default::default() };
                ("/mc.dns.v1.DnsAdmin/DeleteRecords", r.encode_to_vec())
            } else {
                let record = dns::Record { zone, name, ..Default::default() };
                let r = dns::UpsertRecordRequest { record: Some(record) };
                ("/mc.dns.v1.DnsAdmin/UpsertRecord", r.encode_to_vec())
            };
            let pick = methods.iter().position(|m| m == path).expect("relayed");
            let mut data = vec![u8::try_from(pick).expect("few methods"), u8::try_from(label.len()).expect("short")];
            data.extend_from_slice(label.as_bytes());
            data.extend_from_slice(&bytes);
            super::relay_request(&data);
        }
    }
}
