//! The platform's gRPC contracts, one module per versioned package.
//!
//! Generated at build time from `proto/mc/**.proto` by protox + tonic-prost-build.
//! API boundary: these types are the wire; services convert them into validated
//! domain types before acting on them.

#![allow(unreachable_pub, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every contract: lets tests enumerate
/// each service and method (e.g. to prove every RPC is in an auth map).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mc_descriptor.bin"));

pub mod raw;

/// Every `/package.Service/Method` path of the services in `package`.
pub fn grpc_methods(package: &str) -> Vec<String> {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == package) {
        for service in &file.service {
            for method in &service.method {
                out.push(format!("/{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out.sort();
    out
}

/// `mc.admin.v1`: status and snapshot on every service's local admin socket.
pub mod admin {
    pub mod v1 {
        tonic::include_proto!("mc.admin.v1");
    }
}

/// `mc.proxy.v1`: MC-Proxy admin (listeners, routes, certificates, L7 policies, firewall, status).
pub mod proxy {
    pub mod v1 {
        tonic::include_proto!("mc.proxy.v1");
    }
}

/// `mc.dns.v1`: MCNS admin (zones, records, atomic zone replace, cache, status).
pub mod dns {
    pub mod v1 {
        tonic::include_proto!("mc.dns.v1");
    }
}

/// `mc.iam.v1`: MCIAS (sessions, accounts, second factors, tokens, login policy, SSO clients, audit).
pub mod iam {
    pub mod v1 {
        tonic::include_proto!("mc.iam.v1");
    }
}

/// `mc.crypt.v1`: Metacrypt (the seal/unseal barrier).
pub mod crypt {
    pub mod v1 {
        tonic::include_proto!("mc.crypt.v1");
    }
}

/// `mc.deploy.v1`: MCP master and agent (deploy, nodes, heartbeats, snapshots, data transfer).
pub mod deploy {
    pub mod v1 {
        tonic::include_proto!("mc.deploy.v1");
    }
}

/// `mc.testing.v1`: an echo service with every call kind, for tests and load runs only.
pub mod testing {
    pub mod v1 {
        tonic::include_proto!("mc.testing.v1");
    }
}

/// `mc.registry.v1`: MCR admin (repositories, tags, policy, quotas, audit, GC, retention).
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("mc.registry.v1");
    }
}
