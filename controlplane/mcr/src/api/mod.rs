//! The admin API: REST `/v1/registry/…` ([`rest`]) and gRPC
//! `mc.registry.v1` ([`grpc`]), thin adapters over one shared operation
//! per method ([`ops`]), authorized by the one map (`crate::methods`).

pub(crate) mod grpc;
pub(crate) mod ops;
pub(crate) mod rest;
pub(crate) mod storage;
