//! Test support for services' method maps: the descriptor sweep every
//! service with gRPC runs in its `methods.rs` tests.
//!
//! Invariant: a map passes only when it names exactly the RPCs the compiled
//! proto descriptors declare for the package (none missing, none extra), so
//! a forgotten RPC (denied to everyone by default) or a stale entry fails.

use super::MethodMap;

/// Panics unless `map`'s gRPC entries (keys starting with `/`) are exactly
/// the RPCs of proto `package`, and the package has at least `min_rpcs`
/// (guards against a descriptor set that enumerates nothing).
pub fn assert_map_covers(package: &str, map: &MethodMap, min_rpcs: usize) {
    let rpcs = mc_proto::grpc_methods(package);
    assert!(
        rpcs.len() >= min_rpcs,
        "descriptor enumerates the services: {rpcs:?}"
    );
    for rpc in &rpcs {
        assert!(
            map.get(rpc).is_some(),
            "{rpc} is missing from the method map"
        );
    }
    for (key, _) in map.entries().filter(|(k, _)| k.starts_with('/')) {
        assert!(
            rpcs.iter().any(|r| r == key),
            "{key} is mapped but no such RPC exists"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Requirement::Admin;

    fn admin_map() -> MethodMap {
        MethodMap::new()
            .grpc("/mc.admin.v1.Admin/Status", Admin)
            .grpc("/mc.admin.v1.Admin/Snapshot", Admin)
            .rest("GET", "/v1/not/grpc", Admin)
    }

    #[test]
    fn a_map_naming_exactly_the_packages_rpcs_passes() {
        assert_map_covers("mc.admin.v1", &admin_map(), 2);
    }

    #[test]
    #[should_panic(expected = "is missing from the method map")]
    fn a_missing_rpc_fails() {
        let map = MethodMap::new().grpc("/mc.admin.v1.Admin/Status", Admin);
        assert_map_covers("mc.admin.v1", &map, 2);
    }

    #[test]
    #[should_panic(expected = "is mapped but no such RPC exists")]
    fn an_rpc_the_descriptor_lacks_fails() {
        let map = admin_map().grpc("/mc.admin.v1.Admin/Reboot", Admin);
        assert_map_covers("mc.admin.v1", &map, 2);
    }

    #[test]
    #[should_panic(expected = "descriptor enumerates the services")]
    fn an_unknown_package_fails() {
        assert_map_covers("mc.nosuch.v1", &MethodMap::new(), 1);
    }
}
