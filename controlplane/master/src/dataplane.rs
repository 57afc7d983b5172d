//! The data-plane admin surface the control plane relays to nodes: every
//! unary RPC of `mc.proxy.v1.ProxyAdmin` and `mc.dns.v1.DnsAdmin` (the
//! services a node's `mcd dataplane` answers on its admin socket), read
//! from the proto descriptors so a new data-plane RPC is relayed, mapped
//! and swept without a list to update here. Shared by the master (which
//! serves them) and the agent (which carries them to its socket).

use std::sync::LazyLock;

/// The relayed services, fully qualified.
pub const SERVICES: [&str; 2] = ["mc.proxy.v1.ProxyAdmin", "mc.dns.v1.DnsAdmin"];

/// The request header naming the node a call to the control plane's
/// `mc.proxy.v1` / `mc.dns.v1` is for.
pub const NODE_HEADER: &str = "mc-node";

/// Largest relayed message (a route table of 100k entries travels in one).
pub const MAX_MESSAGE: usize = 64 << 20;

static METHODS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["mc.proxy.v1", "mc.dns.v1"]
        .into_iter()
        .flat_map(mc_proto::grpc_methods)
        .filter(|m| SERVICES.iter().any(|s| m.starts_with(&format!("/{s}/"))))
        .collect()
});

/// Every relayed `/package.Service/Method` path.
pub fn methods() -> &'static [String] {
    &METHODS
}

/// Whether `path` is a relayed method.
pub fn relayable(path: &str) -> bool {
    METHODS.iter().any(|m| m == path)
}

/// `Get*` and `List*` change nothing: they are not audited as changes.
pub fn read_only(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name.starts_with("Get") || name.starts_with("List")
}

/// `proxy.UpsertRoute` for `/mc.proxy.v1.ProxyAdmin/UpsertRoute`.
pub fn short(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("");
    let area = service.split('.').nth(1).unwrap_or(service);
    format!("{area}.{method}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_plane_rpc_is_relayed_and_classified() {
        let all: Vec<String> = ["mc.proxy.v1", "mc.dns.v1"]
            .into_iter()
            .flat_map(mc_proto::grpc_methods)
            .collect();
        assert!(all.len() > 30, "{all:?}");
        assert_eq!(methods(), all.as_slice());
        assert!(relayable("/mc.proxy.v1.ProxyAdmin/UpsertRoute"));
        assert!(!relayable("/mc.deploy.v1.Agent/ApplyService"));
        assert!(!relayable("/mc.proxy.v1.ProxyAdmin/Nope"));
        assert!(read_only("/mc.dns.v1.DnsAdmin/ListRecords"));
        assert!(read_only("/mc.proxy.v1.ProxyAdmin/GetStatus"));
        assert!(!read_only("/mc.dns.v1.DnsAdmin/UpsertRecord"));
        assert!(!read_only("/mc.dns.v1.DnsAdmin/FlushCache"));
        assert_eq!(
            short("/mc.dns.v1.DnsAdmin/UpsertRecord"),
            "dns.UpsertRecord"
        );
    }
}
