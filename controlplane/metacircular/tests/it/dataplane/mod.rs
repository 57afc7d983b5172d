//! The data plane end to end: `mcd dataplane` with real clients and backends,
//! L4 (`proxy`), L7 (`l7`) and DNS (`dns`); every scenario on both I/O drivers.

pub(crate) mod dns;
pub(crate) mod l7;
pub(crate) mod ops;
mod plain_http;
mod plain_routes;
mod proxy;
mod security;
