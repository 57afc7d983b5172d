//! `mcctl dns …`: MCNS through the data plane's admin socket (`mc.dns.v1`).

use anyhow::{Context, bail};
use clap::Subcommand;
use mc_proto::dns::v1 as pb;
use pb::dns_admin_client::DnsAdminClient;
use tonic::transport::Channel;

use crate::endpoints::Endpoints;

#[derive(Subcommand)]
pub(crate) enum DnsCommand {
    /// Version, workers, I/O driver, listen addresses, responses by rcode, cache, upstreams.
    Status,
    /// Zones.
    #[command(subcommand)]
    Zones(ZoneCommand),
    /// Records of a zone.
    #[command(subcommand)]
    Records(RecordCommand),
    /// Drop the forwarding cache (all names, or one).
    Flush { name: Option<String> },
}

#[derive(Subcommand)]
pub(crate) enum ZoneCommand {
    List,
    /// Create a zone with its SOA and apex NS records.
    Create {
        zone: String,
        /// SOA MNAME (default ns1.ZONE).
        #[arg(long)]
        primary_ns: Option<String>,
        /// SOA RNAME as a mail address (default hostmaster@ZONE).
        #[arg(long)]
        admin_email: Option<String>,
        /// Apex NS target; repeat for several (default: the primary NS).
        #[arg(long = "ns", value_name = "HOST")]
        nameservers: Vec<String>,
        /// Negative-caching TTL in seconds (default 300).
        #[arg(long, default_value_t = 0)]
        minimum: u32,
        /// SOA TTL and the zone's default record TTL in seconds (default 3600).
        #[arg(long, default_value_t = 0)]
        ttl: u32,
    },
    /// Delete a zone and all its records.
    Delete {
        zone: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum RecordCommand {
    /// List records (optionally one name and/or type).
    List {
        zone: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type")]
        rtype: Option<String>,
    },
    /// Add a record, or change its TTL (idempotent).
    Add {
        zone: String,
        /// Relative to the zone; `@` for the apex.
        name: String,
        /// A, AAAA, CNAME, TXT, SRV, MX, PTR, CAA or NS.
        rtype: String,
        /// As in a zone file, e.g. `192.0.2.1`, `10 mail`, `"v=spf1 -all"`.
        #[arg(required = true, num_args = 1..)]
        value: Vec<String>,
        /// Seconds (default: the zone's).
        #[arg(long, default_value_t = 0)]
        ttl: u32,
    },
    /// Remove one record, or the whole RRset when VALUE is left out.
    Remove {
        zone: String,
        name: String,
        rtype: String,
        #[arg(num_args = 0..)]
        value: Vec<String>,
    },
}

fn rtype(s: &str) -> anyhow::Result<i32> {
    Ok((match s.to_ascii_uppercase().as_str() {
        "A" => pb::RecordType::A,
        "AAAA" => pb::RecordType::Aaaa,
        "CNAME" => pb::RecordType::Cname,
        "TXT" => pb::RecordType::Txt,
        "SRV" => pb::RecordType::Srv,
        "MX" => pb::RecordType::Mx,
        "PTR" => pb::RecordType::Ptr,
        "CAA" => pb::RecordType::Caa,
        "NS" => pb::RecordType::Ns,
        other => {
            bail!("unknown record type `{other}` (A, AAAA, CNAME, TXT, SRV, MX, PTR, CAA, NS)")
        }
    }) as i32)
}

fn rtype_name(t: i32) -> &'static str {
    match pb::RecordType::try_from(t) {
        Ok(pb::RecordType::A) => "A",
        Ok(pb::RecordType::Aaaa) => "AAAA",
        Ok(pb::RecordType::Cname) => "CNAME",
        Ok(pb::RecordType::Txt) => "TXT",
        Ok(pb::RecordType::Srv) => "SRV",
        Ok(pb::RecordType::Mx) => "MX",
        Ok(pb::RecordType::Ptr) => "PTR",
        Ok(pb::RecordType::Caa) => "CAA",
        Ok(pb::RecordType::Ns) => "NS",
        _ => "?",
    }
}

fn origin_name(o: i32) -> &'static str {
    match pb::Origin::try_from(o) {
        Ok(pb::Origin::ConfigFile) => "config",
        Ok(pb::Origin::AdminApi) => "api",
        _ => "?",
    }
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

async fn client(endpoints: &Endpoints) -> anyhow::Result<DnsAdminClient<Channel>> {
    let socket = endpoints
        .socket("dns")
        .or_else(|| endpoints.socket("dataplane"))
        .context("endpoints file has no dns.admin_socket")?;
    let channel = mc_shell::admin::channel(&socket)
        .await
        .with_context(|| format!("cannot reach the data plane at {}", socket.display()))?;
    Ok(DnsAdminClient::new(channel))
}

fn print(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) async fn run(endpoints: &Endpoints, json: bool, cmd: DnsCommand) -> anyhow::Result<()> {
    let mut c = client(endpoints).await?;
    match cmd {
        DnsCommand::Status => {
            let s = c
                .get_status(pb::GetStatusRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let driver = match pb::IoDriver::try_from(s.io_driver) {
                Ok(pb::IoDriver::IoUring) => "io_uring",
                Ok(pb::IoDriver::Epoll) => "epoll",
                _ => "?",
            };
            let mut responses: Vec<_> = s.responses.iter().collect();
            responses.sort();
            if json {
                print(&serde_json::json!({
                    "version": s.version, "uptime_seconds": s.uptime_seconds, "workers": s.workers,
                    "io_driver": driver, "io_driver_reason": s.io_driver_reason,
                    "snapshot_generation": s.snapshot_generation, "listen": s.listen, "zones": s.zones,
                    "responses": s.responses, "cache_entries": s.cache_entries, "cache_hits": s.cache_hits,
                    "cache_misses": s.cache_misses, "rrl_dropped": s.rrl_dropped, "malformed": s.malformed,
                    "upstreams": s.upstreams.iter().map(|u| serde_json::json!({
                        "address": u.address, "queries": u.queries, "failures": u.failures, "timeouts": u.timeouts,
                    })).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            println!(
                "version {}  uptime {}s  workers {}  io {}",
                s.version, s.uptime_seconds, s.workers, driver
            );
            println!(
                "listen {}  zones {}  snapshot generation {}",
                if s.listen.is_empty() {
                    "(not serving)".to_owned()
                } else {
                    s.listen.join(", ")
                },
                s.zones,
                s.snapshot_generation
            );
            println!(
                "responses: {}",
                responses
                    .iter()
                    .filter(|(_, v)| **v > 0)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!(
                "cache: {} entries, {} hits, {} misses; rrl dropped {}; malformed {}",
                s.cache_entries, s.cache_hits, s.cache_misses, s.rrl_dropped, s.malformed
            );
            for u in &s.upstreams {
                println!(
                    "upstream {}: {} queries, {} failures, {} timeouts",
                    u.address, u.queries, u.failures, u.timeouts
                );
            }
        }
        DnsCommand::Zones(ZoneCommand::List) => {
            let zones = c
                .list_zones(pb::ListZonesRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .zones;
            if json {
                print(&serde_json::json!(zones.iter().map(|z| {
                    let soa = z.soa.clone().unwrap_or_default();
                    serde_json::json!({
                        "name": z.name, "serial": z.serial, "records": z.record_count, "origin": origin_name(z.origin),
                        "soa": {"primary_ns": soa.primary_ns, "admin_email": soa.admin_email, "refresh": soa.refresh,
                                "retry": soa.retry, "expire": soa.expire, "minimum": soa.minimum, "ttl": soa.ttl},
                    })
                }).collect::<Vec<_>>()));
                return Ok(());
            }
            println!(
                "{:<40} {:>12} {:>8} {:<8} PRIMARY NS",
                "ZONE", "SERIAL", "RECORDS", "ORIGIN"
            );
            for z in zones {
                println!(
                    "{:<40} {:>12} {:>8} {:<8} {}",
                    z.name,
                    z.serial,
                    z.record_count,
                    origin_name(z.origin),
                    z.soa.map(|s| s.primary_ns).unwrap_or_default()
                );
            }
        }
        DnsCommand::Zones(ZoneCommand::Create {
            zone,
            primary_ns,
            admin_email,
            nameservers,
            minimum,
            ttl,
        }) => {
            let z = c
                .create_zone(pb::CreateZoneRequest {
                    name: zone,
                    soa: Some(pb::Soa {
                        primary_ns: primary_ns.unwrap_or_default(),
                        admin_email: admin_email.unwrap_or_default(),
                        minimum,
                        ttl,
                        ..pb::Soa::default()
                    }),
                    nameservers,
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!("zone {} created (serial {})", z.name, z.serial);
        }
        DnsCommand::Zones(ZoneCommand::Delete { zone }) => {
            let deleted = c
                .delete_zone(pb::DeleteZoneRequest { name: zone.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .deleted;
            if !deleted {
                bail!("no zone {zone}");
            }
            println!("zone {zone} deleted");
        }
        DnsCommand::Records(RecordCommand::List {
            zone,
            name,
            rtype: t,
        }) => {
            let r = c
                .list_records(pb::ListRecordsRequest {
                    zone,
                    name: name.unwrap_or_default(),
                    r#type: match t {
                        Some(t) => rtype(&t)?,
                        None => 0,
                    },
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print(&serde_json::json!({
                    "serial": r.serial,
                    "records": r.records.iter().map(|x| serde_json::json!({
                        "name": x.name, "type": rtype_name(x.r#type), "ttl": x.ttl, "value": x.value,
                        "origin": origin_name(x.origin),
                    })).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            println!(
                "{:<32} {:>7} {:<6} {:<8} VALUE",
                "NAME", "TTL", "TYPE", "ORIGIN"
            );
            for x in &r.records {
                println!(
                    "{:<32} {:>7} {:<6} {:<8} {}",
                    x.name,
                    x.ttl,
                    rtype_name(x.r#type),
                    origin_name(x.origin),
                    x.value
                );
            }
            println!("serial {}", r.serial);
        }
        DnsCommand::Records(RecordCommand::Add {
            zone,
            name,
            rtype: t,
            value,
            ttl,
        }) => {
            let r = c
                .upsert_record(pb::UpsertRecordRequest {
                    record: Some(pb::Record {
                        zone: zone.clone(),
                        name: name.clone(),
                        r#type: rtype(&t)?,
                        ttl,
                        value: value.join(" "),
                        origin: 0,
                    }),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if r.changed == 0 {
                println!("{name} {t} unchanged in {zone} (serial {})", r.serial);
            } else {
                println!("{name} {t} set in {zone} (serial {})", r.serial);
            }
        }
        DnsCommand::Records(RecordCommand::Remove {
            zone,
            name,
            rtype: t,
            value,
        }) => {
            let r = c
                .delete_records(pb::DeleteRecordsRequest {
                    zone: zone.clone(),
                    name: name.clone(),
                    r#type: rtype(&t)?,
                    value: value.join(" "),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if r.changed == 0 {
                bail!("no {t} record at {name} in {zone}");
            }
            println!(
                "removed {} record(s) from {zone} (serial {})",
                r.changed, r.serial
            );
        }
        DnsCommand::Flush { name } => {
            let r = c
                .flush_cache(pb::FlushCacheRequest {
                    name: name.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!("cache flushed ({} entries)", r.removed);
        }
    }
    Ok(())
}
