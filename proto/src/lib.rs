//! The platform's gRPC contracts, one module per versioned package.
//!
//! Generated at build time from `proto/mc/**.proto` by protox + tonic-prost-build.
//! API boundary: these types are the wire; services convert them into validated
//! domain types before acting on them.

#![allow(unreachable_pub, clippy::all, clippy::pedantic)]

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

/// `mc.deploy.v1`: MCP master and agent (deploy, nodes, heartbeats, snapshots, data transfer).
pub mod deploy {
    pub mod v1 {
        tonic::include_proto!("mc.deploy.v1");
    }
}
