//! `mc.proxy.v1` L7 policies: proto messages to and from [`PolicyRule`].

use mc_proto::proxy::v1 as pb;

use crate::model::{Invalid, L7PolicySpec, PolicyRule};

pub(super) fn policy_pb(p: &L7PolicySpec) -> pb::L7Policy {
    let (kind, value, header_value) = match &p.rule {
        PolicyRule::BlockUserAgent { substring } => (
            pb::L7PolicyKind::BlockUserAgent,
            substring.clone(),
            String::new(),
        ),
        PolicyRule::RequireHeader { name, value } => (
            pb::L7PolicyKind::RequireHeader,
            name.clone(),
            value.clone().unwrap_or_default(),
        ),
    };
    pb::L7Policy {
        id: p.id.clone(),
        listener: p.listener.clone(),
        hostname: p.hostname.to_string(),
        kind: kind as i32,
        value,
        header_value,
        position: p.position,
    }
}

pub(super) fn policy_from_pb(p: &pb::L7Policy) -> Result<PolicyRule, Invalid> {
    match pb::L7PolicyKind::try_from(p.kind) {
        Ok(pb::L7PolicyKind::BlockUserAgent) => {
            if !p.header_value.is_empty() {
                return Err(Invalid::new(
                    "policy.header_value",
                    "only for require_header policies",
                ));
            }
            Ok(PolicyRule::BlockUserAgent {
                substring: p.value.clone(),
            })
        }
        Ok(pb::L7PolicyKind::RequireHeader) => Ok(PolicyRule::RequireHeader {
            name: p.value.clone(),
            value: (!p.header_value.is_empty()).then(|| p.header_value.clone()),
        }),
        _ => Err(Invalid::new(
            "policy.kind",
            "block_user_agent or require_header",
        )),
    }
}
