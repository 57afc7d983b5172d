//! The relayed messages read through their descriptors (`prost-reflect`
//! over `mc_proto::FILE_DESCRIPTOR_SET`): a request's audit target and
//! compact summary (secrets shown by size only), and the REST twin's JSON
//! mapping (protobuf's canonical JSON) in both directions. No code per
//! method: a new data-plane RPC is described like the others.

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MethodDescriptor, Value};
use tonic::Status;

/// Fields whose value is never shown: private keys, TSIG secrets.
fn secret(name: &str) -> bool {
    name.ends_with("_pem") || name.contains("secret") || name.contains("password")
}

/// Fields that name what a change is made to, in the order they are tried.
const TARGETS: [&str; 8] = [
    "listener", "hostname", "zone", "name", "id", "ip", "cidr", "country",
];

/// Longest string shown in a summary, and the longest summary.
pub(crate) const MAX_VALUE: usize = 64;
pub(crate) const MAX_SUMMARY: usize = 512;
/// Items of a list shown.
const MAX_ITEMS: usize = 4;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(mc_proto::FILE_DESCRIPTOR_SET).ok());

/// The descriptor of a relayed method (`/pkg.Service/Method`).
pub(crate) fn method(path: &str) -> Option<MethodDescriptor> {
    let (service, name) = path.trim_start_matches('/').split_once('/')?;
    POOL.as_ref()?
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == name)
}

fn unknown(path: &str) -> Status {
    Status::unimplemented(format!("{path} is not a data-plane admin method"))
}

/// The request of `path`, decoded (INVALID_ARGUMENT when it is not one).
pub(crate) fn request(path: &str, bytes: &[u8]) -> Result<DynamicMessage, Status> {
    let m = method(path).ok_or_else(|| unknown(path))?;
    DynamicMessage::decode(m.input(), bytes)
        .map_err(|e| Status::invalid_argument(format!("request: {e}")))
}

/// A JSON body as the request of `path`, encoded.
pub(crate) fn request_from_json(path: &str, json: &serde_json::Value) -> Result<Vec<u8>, Status> {
    let m = method(path).ok_or_else(|| unknown(path))?;
    let msg = DynamicMessage::deserialize(m.input(), json)
        .map_err(|e| Status::invalid_argument(format!("body: {e}")))?;
    Ok(msg.encode_to_vec())
}

/// An encoded response of `path` as JSON.
pub(crate) fn response_to_json(path: &str, bytes: &[u8]) -> Result<serde_json::Value, Status> {
    let m = method(path).ok_or_else(|| unknown(path))?;
    let msg = DynamicMessage::decode(m.output(), bytes)
        .map_err(|e| Status::internal(format!("the data plane's answer: {e}")))?;
    serde_json::to_value(&msg)
        .map_err(|e| Status::internal(format!("the data plane's answer: {e}")))
}

/// What the change is made to: the first [`TARGETS`] values found in the
/// request and the messages it holds, joined by `/` (at most two).
pub(crate) fn target(msg: &DynamicMessage) -> String {
    let mut found = Vec::new();
    collect_targets(msg, 0, &mut found);
    found.truncate(2);
    found.join("/")
}

fn collect_targets(msg: &DynamicMessage, depth: usize, found: &mut Vec<String>) {
    for name in TARGETS {
        if let Some(Value::String(s)) = msg.get_field_by_name(name).as_deref()
            && !s.is_empty()
        {
            found.push(clip(s));
        }
    }
    if depth < 2 {
        for (_, v) in msg.fields() {
            if let Value::Message(inner) = v {
                collect_targets(inner, depth + 1, found);
            }
        }
    }
}

/// `field=value …` of every set field, nested messages in braces, secrets
/// as their size, long values clipped; at most [`MAX_SUMMARY`] bytes.
pub(crate) fn summary(msg: &DynamicMessage) -> String {
    let mut out = String::new();
    render(msg, 0, &mut out);
    clip_to(&out, MAX_SUMMARY)
}

fn render(msg: &DynamicMessage, depth: usize, out: &mut String) {
    let mut first = true;
    for (field, value) in msg.fields() {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(field.name());
        out.push('=');
        if secret(field.name()) {
            let n = match value {
                Value::String(s) => s.len(),
                Value::Bytes(b) => b.len(),
                _ => 0,
            };
            out.push_str(&format!("<{n} bytes, not shown>"));
            continue;
        }
        value_text(&field.kind(), value, depth, out);
    }
}

fn value_text(kind: &Kind, value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(&format!("{:?}", clip(s))),
        Value::Bytes(b) => out.push_str(&format!("<{} bytes>", b.len())),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => out.push_str(v.name()),
                None => out.push_str(&n.to_string()),
            },
            _ => out.push_str(&n.to_string()),
        },
        Value::Message(m) if depth < 3 => {
            out.push('{');
            render(m, depth + 1, out);
            out.push('}');
        }
        Value::Message(_) => out.push_str("{…}"),
        Value::List(items) => {
            out.push('[');
            for (i, v) in items.iter().take(MAX_ITEMS).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value_text(kind, v, depth, out);
            }
            if items.len() > MAX_ITEMS {
                out.push_str(&format!(",… {} in all", items.len()));
            }
            out.push(']');
        }
        Value::Map(m) => out.push_str(&format!("<{} entries>", m.len())),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::I32(n) => out.push_str(&n.to_string()),
        Value::I64(n) => out.push_str(&n.to_string()),
        Value::U32(n) => out.push_str(&n.to_string()),
        Value::U64(n) => out.push_str(&n.to_string()),
        Value::F32(n) => out.push_str(&n.to_string()),
        Value::F64(n) => out.push_str(&n.to_string()),
    }
}

fn clip(s: &str) -> String {
    clip_to(s, MAX_VALUE)
}

fn clip_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The request's message descriptor, for callers that build one.
#[cfg(test)]
pub(crate) fn input(path: &str) -> Option<prost_reflect::MessageDescriptor> {
    method(path).map(|m| m.input())
}

#[cfg(test)]
mod tests {
    use mc_proto::{dns::v1 as dns, proxy::v1 as proxy};

    use super::*;

    #[test]
    fn every_relayed_method_has_a_descriptor() {
        for m in crate::dataplane::methods() {
            assert!(input(m).is_some(), "{m}");
            // The relay carries unary calls only.
            let d = method(m).expect("descriptor");
            assert!(
                !d.is_client_streaming() && !d.is_server_streaming(),
                "{m} streams"
            );
        }
    }

    #[test]
    fn summaries_name_the_target_and_never_show_secrets() {
        let put = proxy::PutCertificateRequest {
            name: "web".into(),
            chain_pem: "-----BEGIN CERTIFICATE-----".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----SECRETSTUFF".into(),
        };
        let msg = request(
            "/mc.proxy.v1.ProxyAdmin/PutCertificate",
            &put.encode_to_vec(),
        )
        .expect("decode");
        let s = summary(&msg);
        assert!(
            !s.contains("SECRETSTUFF") && !s.contains("CERTIFICATE"),
            "{s}"
        );
        assert!(s.contains("key_pem=<38 bytes, not shown>"), "{s}");
        assert_eq!(target(&msg), "web");

        let up = dns::UpsertRecordRequest {
            record: Some(dns::Record {
                zone: "svc.test".into(),
                name: "web".into(),
                r#type: dns::RecordType::A.into(),
                value: "192.0.2.1".into(),
                ..dns::Record::default()
            }),
        };
        let msg = request("/mc.dns.v1.DnsAdmin/UpsertRecord", &up.encode_to_vec()).expect("decode");
        assert_eq!(target(&msg), "svc.test/web");
        let s = summary(&msg);
        assert!(
            s.contains("type=RECORD_TYPE_A") && s.contains("\"192.0.2.1\""),
            "{s}"
        );

        let tsig = dns::PutTsigKeyRequest {
            key: None,
            secret: "c2VjcmV0c2VjcmV0c2VjcmV0".into(),
        };
        let msg = request("/mc.dns.v1.DnsAdmin/PutTsigKey", &tsig.encode_to_vec()).expect("decode");
        assert!(!summary(&msg).contains("c2Vj"));
    }

    proptest::proptest! {
        /// Whatever a caller sends is described within bounds or refused,
        /// never a panic.
        #[test]
        fn any_bytes_are_described_within_bounds_or_refused(
            pick in 0usize..1000,
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let methods = crate::dataplane::methods();
            let m = &methods[pick % methods.len()];
            if let Ok(msg) = request(m, &bytes) {
                proptest::prop_assert!(summary(&msg).len() <= MAX_SUMMARY + 3);
                proptest::prop_assert!(target(&msg).len() <= 2 * (MAX_VALUE + 3) + 1);
            }
        }
    }

    #[test]
    fn json_maps_both_ways_and_bad_input_is_refused() {
        let path = "/mc.proxy.v1.ProxyAdmin/RemoveRoute";
        let bytes =
            request_from_json(path, &serde_json::json!({"hostname": "a.test"})).expect("json");
        let back = proxy::RemoveRouteRequest::decode(bytes.as_slice()).expect("decode");
        assert_eq!(back.hostname, "a.test");
        let e =
            request_from_json(path, &serde_json::json!({"nope": 1})).expect_err("unknown field");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = request(path, b"\xff\xff\xff").expect_err("garbage");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let resp = proxy::RemoveRouteResponse { removed: true }.encode_to_vec();
        let j = response_to_json(path, &resp).expect("json");
        assert_eq!(j["removed"], true);
        assert_eq!(
            request("/mc.proxy.v1.ProxyAdmin/Nope", b"")
                .expect_err("unknown")
                .code(),
            tonic::Code::Unimplemented
        );
    }
}
