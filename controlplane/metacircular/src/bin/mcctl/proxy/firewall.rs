//! `mcctl proxy firewall …` and `mcctl proxy geoip-reload`: the global firewall.

use anyhow::bail;
use clap::{Args, Subcommand};
use mc_proto::proxy::v1 as pb;
use pb::firewall_rule::Target as T;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row, utc};

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// A single IPv4 or IPv6 address.
    #[arg(long)]
    ip: Option<String>,
    /// A network, e.g. 198.51.100.0/24.
    #[arg(long)]
    cidr: Option<String>,
    /// ISO 3166-1 alpha-2 country code (needs a GeoIP database: `geoip_db` under
    /// [proxy.firewall] in the data plane's config).
    #[arg(long)]
    country: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum FirewallCommand {
    /// Rules, limits and the GeoIP database.
    List,
    /// Block an address, network or country (idempotent).
    Add {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Remove a block rule.
    Remove {
        #[command(flatten)]
        target: Target,
    },
    /// Set connection limits (0 = unlimited).
    Limits {
        /// New connections per second per client IP (at most 1000).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        #[arg(long, default_value_t = 0)]
        burst: u32,
        #[arg(long, default_value_t = 0)]
        per_ip: u32,
        #[arg(long, default_value_t = 0)]
        total: u32,
    },
}

#[derive(Serialize)]
struct RuleView {
    kind: &'static str,
    value: String,
    origin: String,
    comment: String,
}

impl From<pb::FirewallRule> for RuleView {
    fn from(r: pb::FirewallRule) -> Self {
        let (kind, value) = match r.target {
            Some(T::Ip(v)) => ("ip", v),
            Some(T::Cidr(v)) => ("cidr", v),
            Some(T::Country(v)) => ("country", v),
            None => ("?", String::new()),
        };
        Self {
            kind,
            value,
            origin: name_or::<pb::Origin>(r.origin, "?"),
            comment: r.comment,
        }
    }
}

#[derive(Serialize)]
struct LimitsView {
    rate_per_second: u32,
    burst: u32,
    max_connections_per_ip: u32,
    max_connections_total: u32,
}

impl From<pb::FirewallLimits> for LimitsView {
    fn from(l: pb::FirewallLimits) -> Self {
        Self {
            rate_per_second: l.rate_per_second,
            burst: l.burst,
            max_connections_per_ip: l.max_connections_per_ip,
            max_connections_total: l.max_connections_total,
        }
    }
}

#[derive(Serialize)]
struct GeoIpView {
    path: String,
    database_type: String,
    build_epoch_unix: i64,
}

impl From<pb::GeoIpDatabase> for GeoIpView {
    fn from(g: pb::GeoIpDatabase) -> Self {
        Self {
            path: g.path,
            database_type: g.database_type,
            build_epoch_unix: g.build_epoch_unix,
        }
    }
}

impl GeoIpView {
    fn line(&self) -> String {
        format!(
            "geoip: {} ({}, built {})",
            self.path,
            self.database_type,
            utc(self.build_epoch_unix)
        )
    }
}

#[derive(Serialize)]
struct FirewallView {
    rules: Vec<RuleView>,
    limits: LimitsView,
    geoip: Option<GeoIpView>,
}

const TABLE: Table = Table(&[
    Col::left("KIND", 8),
    Col::left("VALUE", 40),
    Col::left("ORIGIN", 8),
    Col::left("COMMENT", 0),
]);

fn rule(t: Target, comment: String) -> pb::FirewallRule {
    let target = match (t.ip, t.cidr, t.country) {
        (Some(ip), _, _) => T::Ip(ip),
        (_, Some(c), _) => T::Cidr(c),
        (_, _, Some(cc)) => T::Country(cc),
        _ => T::Ip(String::new()),
    };
    pb::FirewallRule {
        target: Some(target),
        comment,
        origin: 0,
    }
}

pub(super) async fn run(c: &mut Client, out: Out, cmd: FirewallCommand) -> anyhow::Result<()> {
    match cmd {
        FirewallCommand::List => list(c, out).await,
        FirewallCommand::Add { target, comment } => add(c, out, rule(target, comment)).await,
        FirewallCommand::Remove { target } => remove(c, out, rule(target, String::new())).await,
        FirewallCommand::Limits {
            rate,
            burst,
            per_ip,
            total,
        } => {
            let limits = pb::FirewallLimits {
                rate_per_second: rate,
                burst,
                max_connections_per_ip: per_ip,
                max_connections_total: total,
            };
            set_limits(c, out, limits).await
        }
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let f = c
        .get_firewall(pb::GetFirewallRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let f = FirewallView {
        rules: f.rules.into_iter().map(RuleView::from).collect(),
        limits: f.limits.unwrap_or_default().into(),
        geoip: f.geoip.map(GeoIpView::from),
    };
    out.show(&f, || {
        TABLE.print(
            f.rules
                .iter()
                .map(|r| row![r.kind, r.value, r.origin, r.comment]),
        );
        let l = &f.limits;
        println!(
            "limits: rate {}/s burst {}, {} per IP, {} total (0 = unlimited)",
            l.rate_per_second, l.burst, l.max_connections_per_ip, l.max_connections_total
        );
        if let Some(g) = &f.geoip {
            println!("{}", g.line());
        }
    })
}

async fn add(c: &mut Client, out: Out, rule: pb::FirewallRule) -> anyhow::Result<()> {
    let r = c
        .add_firewall_rule(pb::AddFirewallRuleRequest { rule: Some(rule) })
        .await
        .map_err(refused)?
        .into_inner();
    let view = RuleView::from(r);
    let line = format!("blocking {} {}", view.kind, view.value);
    out.done(&view, &line)
}

async fn remove(c: &mut Client, out: Out, rule: pb::FirewallRule) -> anyhow::Result<()> {
    let view = RuleView::from(rule.clone());
    let removed = c
        .remove_firewall_rule(pb::RemoveFirewallRuleRequest { rule: Some(rule) })
        .await
        .map_err(refused)?
        .into_inner()
        .removed;
    if !removed {
        bail!("no such rule");
    }
    let removed = serde_json::json!({ "removed": { "kind": view.kind, "value": view.value } });
    out.done(&removed, "removed")
}

async fn set_limits(c: &mut Client, out: Out, limits: pb::FirewallLimits) -> anyhow::Result<()> {
    let l = LimitsView::from(
        c.set_firewall_limits(pb::SetFirewallLimitsRequest {
            limits: Some(limits),
        })
        .await
        .map_err(refused)?
        .into_inner(),
    );
    let line = format!(
        "limits: rate {}/s burst {}, {} per IP, {} total",
        l.rate_per_second, l.burst, l.max_connections_per_ip, l.max_connections_total
    );
    out.done(&l, &line)
}

/// `mcctl proxy geoip-reload`.
pub(super) async fn geoip_reload(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let g = GeoIpView::from(
        c.reload_geo_ip(pb::ReloadGeoIpRequest {})
            .await
            .map_err(refused)?
            .into_inner(),
    );
    out.done(&g, &g.line())
}
