//! `mcctl dns zones …`: list, create and delete zones.

use anyhow::bail;
use clap::{Args, Subcommand};
use mc_proto::dns::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum ZoneCommand {
    List,
    /// Create a zone with its SOA and apex NS records.
    Create(CreateArgs),
    /// Delete a zone and all its records.
    Delete {
        zone: String,
    },
}

#[derive(Args)]
pub(crate) struct CreateArgs {
    zone: String,
    /// SOA MNAME (default: the first --ns, else ns1.ZONE).
    #[arg(long)]
    primary_ns: Option<String>,
    /// SOA RNAME as a mail address (default hostmaster@ZONE).
    #[arg(long)]
    admin_email: Option<String>,
    /// Apex NS target; repeat for several (default: the primary NS).
    #[arg(long = "ns", value_name = "HOST")]
    nameservers: Vec<String>,
    /// Negative-caching TTL in seconds [default: 300].
    #[arg(long)]
    minimum: Option<u32>,
    /// SOA TTL and the zone's default record TTL in seconds [default: 3600].
    #[arg(long)]
    ttl: Option<u32>,
}

#[derive(Serialize)]
struct ZoneView {
    name: String,
    serial: u32,
    records: u64,
    origin: String,
    soa: SoaView,
}

#[derive(Serialize)]
struct SoaView {
    primary_ns: String,
    admin_email: String,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
    ttl: u32,
}

impl From<pb::Zone> for ZoneView {
    fn from(z: pb::Zone) -> Self {
        let soa = z.soa.unwrap_or_default();
        Self {
            origin: name_or::<pb::Origin>(z.origin, "?"),
            name: z.name,
            serial: z.serial,
            records: z.record_count,
            soa: SoaView {
                primary_ns: soa.primary_ns,
                admin_email: soa.admin_email,
                refresh: soa.refresh,
                retry: soa.retry,
                expire: soa.expire,
                minimum: soa.minimum,
                ttl: soa.ttl,
            },
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("ZONE", 40),
    Col::right("SERIAL", 12),
    Col::right("RECORDS", 8),
    Col::left("ORIGIN", 8),
    Col::left("PRIMARY NS", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: ZoneCommand) -> anyhow::Result<()> {
    match cmd {
        ZoneCommand::List => list(c, out).await,
        ZoneCommand::Create(args) => create(c, out, args).await,
        ZoneCommand::Delete { zone } => delete(c, out, zone).await,
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let zones: Vec<ZoneView> = c
        .list_zones(pb::ListZonesRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .zones
        .into_iter()
        .map(ZoneView::from)
        .collect();
    out.show(&zones, || {
        TABLE.print(
            zones
                .iter()
                .map(|z| row![z.name, z.serial, z.records, z.origin, z.soa.primary_ns]),
        );
    })
}

async fn create(c: &mut Client, out: Out, a: CreateArgs) -> anyhow::Result<()> {
    let z = ZoneView::from(
        c.create_zone(pb::CreateZoneRequest {
            name: a.zone,
            soa: Some(pb::Soa {
                primary_ns: a.primary_ns.unwrap_or_default(),
                admin_email: a.admin_email.unwrap_or_default(),
                // 0 asks the server for its default (the one the help names).
                minimum: a.minimum.unwrap_or(0),
                ttl: a.ttl.unwrap_or(0),
                ..pb::Soa::default()
            }),
            nameservers: a.nameservers,
        })
        .await
        .map_err(refused)?
        .into_inner(),
    );
    let line = format!("zone {} created (serial {})", z.name, z.serial);
    out.done(&z, &line)
}

async fn delete(c: &mut Client, out: Out, zone: String) -> anyhow::Result<()> {
    let deleted = c
        .delete_zone(pb::DeleteZoneRequest { name: zone.clone() })
        .await
        .map_err(refused)?
        .into_inner()
        .deleted;
    if !deleted {
        bail!("no zone {zone}");
    }
    out.done(
        &serde_json::json!({ "deleted": zone }),
        &format!("zone {zone} deleted"),
    )
}
