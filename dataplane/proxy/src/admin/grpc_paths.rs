//! Path rules between `mc.proxy.v1` and the model, and their backends in
//! `GetStatus` (a part of [`super::grpc`] kept apart to keep files short).

use mc_proto::proxy::v1 as pb;

use crate::model::{Backend, BackendProtocol, Invalid, PathRule};
use crate::snapshot::{BackendHealth, RouteEntry};

pub(super) fn path_pb(p: &PathRule) -> pb::PathRule {
    pb::PathRule {
        prefix: p.prefix.clone(),
        backends: p.backends.iter().map(ToString::to_string).collect(),
        backend_protocol: p.backend_protocol.map_or(
            pb::BackendProtocol::Unspecified as i32,
            super::grpc::backend_protocol,
        ),
        strip_prefix: p.strip_prefix,
    }
}

/// The `i`th rule of `route.l7.paths`; errors name it.
pub(super) fn path_from_pb((i, p): (usize, pb::PathRule)) -> Result<PathRule, Invalid> {
    let field = |what: &str| format!("route.l7.paths[{i}].{what}");
    let backends = p
        .backends
        .iter()
        .map(|b| Backend::parse(b).map_err(|m| Invalid::new(field("backends"), m)))
        .collect::<Result<_, _>>()?;
    let backend_protocol = match pb::BackendProtocol::try_from(p.backend_protocol) {
        Ok(pb::BackendProtocol::Unspecified) => None,
        Ok(pb::BackendProtocol::Http1) => Some(BackendProtocol::Http1),
        Ok(pb::BackendProtocol::H2c) => Some(BackendProtocol::H2c),
        Ok(pb::BackendProtocol::Tls) => Some(BackendProtocol::Tls),
        Err(_) => return Err(Invalid::new(field("backend_protocol"), "unknown value")),
    };
    Ok(PathRule {
        prefix: p.prefix,
        backends,
        backend_protocol,
        strip_prefix: p.strip_prefix,
    })
}

/// The backends of a route's path rules, for its status.
pub(super) fn path_backends(entry: &RouteEntry) -> impl Iterator<Item = &BackendHealth> {
    entry
        .l7
        .iter()
        .flat_map(|l7| l7.paths.iter())
        .flat_map(|(_, t)| t.pool.backends.iter())
}
