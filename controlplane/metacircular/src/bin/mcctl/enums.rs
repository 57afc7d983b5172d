//! Proto enums ↔ the CLI's spellings, through prost's generated
//! `as_str_name()` / `from_str_name()`.
//!
//! The CLI spells a value as its proto name without the enum's prefix,
//! lower-cased (`ROUTE_MODE_L7` → `l7`), upper-cased for DNS record types
//! (`RECORD_TYPE_AAAA` → `AAAA`), and through [`CliEnum::ALIASES`] where the
//! CLI has always said something shorter (`ORIGIN_ADMIN_API` → `api`).
//! Invariant: [`parse`] never yields a `*_UNSPECIFIED` value and refuses an
//! unknown spelling with an error listing the known ones; [`name`] never
//! panics on a number the CLI does not know.

use anyhow::bail;
use mc_proto::{deploy::v1 as deploy, dns::v1 as dns, iam::v1 as iam, proxy::v1 as proxy};

/// A proto enum the CLI reads or prints.
pub(crate) trait CliEnum: Copy + TryFrom<i32> + Into<i32> {
    /// The generated names' common prefix, e.g. `ROUTE_MODE_`.
    const PREFIX: &'static str;
    /// What a value is called in error messages, e.g. `route mode`.
    const WHAT: &'static str;
    /// Spelled upper-case on the command line (DNS record types).
    const UPPER: bool = false;
    /// `(proto name without prefix, CLI spelling)` where they differ.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// prost's `as_str_name()`.
    fn proto_name(self) -> &'static str;
    /// prost's `from_str_name()`.
    fn from_proto_name(name: &str) -> Option<Self>;
}

/// Implements [`CliEnum`] for prost enums: `type => "PREFIX_", "what"`.
macro_rules! cli_enum {
    ($($ty:ty => $prefix:literal, $what:literal $({ $($extra:tt)* })?;)*) => {$(
        impl CliEnum for $ty {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;
            $($($extra)*)?
            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_proto_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    )*};
}

cli_enum! {
    proxy::Origin => "ORIGIN_", "origin" {
        const ALIASES: &'static [(&'static str, &'static str)] =
            &[("CONFIG_FILE", "config"), ("ADMIN_API", "api")];
    };
    proxy::RouteMode => "ROUTE_MODE_", "route mode";
    proxy::ProxyProtocol => "PROXY_PROTOCOL_", "PROXY protocol version";
    proxy::ListenerKind => "LISTENER_KIND_", "listener kind";
    proxy::BackendProtocol => "BACKEND_PROTOCOL_", "backend protocol";
    proxy::BalancePolicy => "BALANCE_POLICY_", "balancing policy";
    proxy::HealthCheckKind => "HEALTH_CHECK_KIND_", "health check kind";
    proxy::PlainHttp => "PLAIN_HTTP_", "plain-HTTP action" {
        const ALIASES: &'static [(&'static str, &'static str)] = &[("NOT_FOUND", "404")];
    };
    proxy::L7PolicyKind => "L7_POLICY_KIND_", "policy kind";
    proxy::IoDriver => "IO_DRIVER_", "I/O driver";
    dns::Origin => "ORIGIN_", "origin" {
        const ALIASES: &'static [(&'static str, &'static str)] =
            &[("CONFIG_FILE", "config"), ("ADMIN_API", "api")];
    };
    dns::RecordType => "RECORD_TYPE_", "record type" { const UPPER: bool = true; };
    dns::IoDriver => "IO_DRIVER_", "I/O driver";
    iam::Role => "ROLE_", "role";
    iam::AccountType => "ACCOUNT_TYPE_", "account type";
    iam::AccountStatus => "ACCOUNT_STATUS_", "account status";
    iam::Effect => "EFFECT_", "effect";
    deploy::ContainerState => "CONTAINER_STATE_", "container state";
    deploy::NodeHealth => "NODE_HEALTH_", "node health";
    deploy::NodeRole => "NODE_ROLE_", "node role";
}

/// The CLI spelling of `value`; `None` for `*_UNSPECIFIED` and unknown numbers.
pub(crate) fn name<E: CliEnum>(value: i32) -> Option<String> {
    let proto = E::try_from(value).ok()?.proto_name();
    let bare = proto.strip_prefix(E::PREFIX)?;
    if bare == "UNSPECIFIED" {
        return None;
    }
    if let Some((_, cli)) = E::ALIASES.iter().find(|(p, _)| *p == bare) {
        return Some((*cli).to_owned());
    }
    Some(if E::UPPER {
        bare.to_owned()
    } else {
        bare.to_ascii_lowercase()
    })
}

/// [`name`], or `fallback` when the value has none.
pub(crate) fn name_or<E: CliEnum>(value: i32, fallback: &str) -> String {
    name::<E>(value).unwrap_or_else(|| fallback.to_owned())
}

/// Every value's CLI spelling. Proto enum numbers here are small, so probing
/// 1..=64 finds them all without a hand-kept list.
pub(crate) fn names<E: CliEnum>() -> Vec<String> {
    (1..=64).filter_map(name::<E>).collect()
}

/// The value a CLI spelling (any case) names, or an error listing the known ones.
pub(crate) fn parse<E: CliEnum>(text: &str) -> anyhow::Result<E> {
    let upper = text.to_ascii_uppercase();
    let bare = E::ALIASES
        .iter()
        .find(|(_, cli)| cli.eq_ignore_ascii_case(text))
        .map_or(upper.as_str(), |(proto, _)| *proto);
    if bare != "UNSPECIFIED"
        && let Some(value) = E::from_proto_name(&format!("{}{bare}", E::PREFIX))
    {
        return Ok(value);
    }
    bail!("unknown {} `{text}` ({})", E::WHAT, names::<E>().join(", "))
}

/// [`parse`] as the `i32` a proto field holds.
pub(crate) fn parse_i32<E: CliEnum>(text: &str) -> anyhow::Result<i32> {
    parse::<E>(text).map(Into::into)
}

/// A clap `ValueEnum` flag's value as the proto enum of the same spelling.
pub(crate) fn from_flag<E: CliEnum>(flag: &impl clap::ValueEnum) -> anyhow::Result<i32> {
    match flag.to_possible_value() {
        Some(v) => parse_i32::<E>(v.get_name()),
        None => bail!("a hidden {} value", E::WHAT),
    }
}

/// A clap `ValueEnum` flag's spelling (for string-typed proto fields).
pub(crate) fn flag_name(flag: &impl clap::ValueEnum) -> String {
    flag.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_keep_the_cli_names() {
        assert_eq!(name::<proxy::Origin>(2).as_deref(), Some("api"));
        assert_eq!(name::<dns::Origin>(1).as_deref(), Some("config"));
        assert_eq!(name::<proxy::IoDriver>(1).as_deref(), Some("io_uring"));
        assert_eq!(name::<dns::RecordType>(2).as_deref(), Some("AAAA"));
        assert_eq!(
            name::<proxy::L7PolicyKind>(1).as_deref(),
            Some("block_user_agent")
        );
        assert_eq!(name::<iam::Role>(0), None, "unspecified has no name");
        assert_eq!(name::<iam::Role>(99), None);
        assert_eq!(names::<iam::Role>(), ["admin", "user", "guest"]);
        for e in names::<proxy::ProxyProtocol>() {
            let v = parse_i32::<proxy::ProxyProtocol>(&e).expect("parses");
            assert_eq!(name::<proxy::ProxyProtocol>(v), Some(e));
        }
        assert_eq!(
            parse::<dns::RecordType>("aaaa").ok(),
            Some(dns::RecordType::Aaaa)
        );
        assert_eq!(
            parse::<proxy::Origin>("API").ok(),
            Some(proxy::Origin::AdminApi)
        );
    }

    #[test]
    fn unknown_and_unspecified_spellings_are_refused_clearly() {
        let err = parse::<iam::Role>("wizard").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "unknown role `wizard` (admin, user, guest)"
        );
        assert!(parse::<iam::Role>("unspecified").is_err());
        assert!(parse::<dns::RecordType>("").is_err());
    }
}
