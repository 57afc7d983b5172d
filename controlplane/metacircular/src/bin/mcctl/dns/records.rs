//! `mcctl dns records …`: list, add and remove records of a zone.
//!
//! Record types are read and printed through [`crate::enums`]: `AAAA` on the
//! command line is `RECORD_TYPE_AAAA` on the wire, and an unknown type is an
//! error naming the known ones.

use anyhow::bail;
use clap::Subcommand;
use mc_proto::dns::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::{name_or, parse_i32};
use crate::output::{Col, Out, Table, row};

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

#[derive(Serialize)]
struct RecordsView {
    serial: u32,
    records: Vec<RecordView>,
}

#[derive(Serialize)]
struct RecordView {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    value: String,
    origin: String,
}

/// The answer to a change: the zone's serial after it and how many records changed.
#[derive(Serialize)]
struct ChangeView<'a> {
    zone: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
    serial: u32,
    changed: u32,
}

const TABLE: Table = Table(&[
    Col::left("NAME", 32),
    Col::right("TTL", 7),
    Col::left("TYPE", 6),
    Col::left("ORIGIN", 8),
    Col::left("VALUE", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: RecordCommand) -> anyhow::Result<()> {
    match cmd {
        RecordCommand::List { zone, name, rtype } => {
            let request = pb::ListRecordsRequest {
                zone,
                name: name.unwrap_or_default(),
                r#type: match rtype {
                    Some(t) => parse_i32::<pb::RecordType>(&t)?,
                    None => 0,
                },
            };
            list(c, out, request).await
        }
        RecordCommand::Add {
            zone,
            name,
            rtype,
            value,
            ttl,
        } => {
            let record = pb::Record {
                r#type: parse_i32::<pb::RecordType>(&rtype)?,
                zone,
                name,
                ttl,
                value: value.join(" "),
                origin: 0,
            };
            add(c, out, record, &rtype).await
        }
        RecordCommand::Remove {
            zone,
            name,
            rtype,
            value,
        } => {
            let request = pb::DeleteRecordsRequest {
                r#type: parse_i32::<pb::RecordType>(&rtype)?,
                zone,
                name,
                value: value.join(" "),
            };
            remove(c, out, request, &rtype).await
        }
    }
}

async fn list(c: &mut Client, out: Out, request: pb::ListRecordsRequest) -> anyhow::Result<()> {
    let r = c.list_records(request).await.map_err(refused)?.into_inner();
    let r = RecordsView {
        serial: r.serial,
        records: r
            .records
            .into_iter()
            .map(|x| RecordView {
                rtype: name_or::<pb::RecordType>(x.r#type, "?"),
                origin: name_or::<pb::Origin>(x.origin, "?"),
                name: x.name,
                ttl: x.ttl,
                value: x.value,
            })
            .collect(),
    };
    out.show(&r, || {
        TABLE.print(
            r.records
                .iter()
                .map(|x| row![x.name, x.ttl, x.rtype, x.origin, x.value]),
        );
        println!("serial {}", r.serial);
    })
}

/// `t` is the type as the operator spelled it, echoed back in the text.
async fn add(c: &mut Client, out: Out, record: pb::Record, t: &str) -> anyhow::Result<()> {
    let (zone, name) = (record.zone.clone(), record.name.clone());
    let rtype = name_or::<pb::RecordType>(record.r#type, "?");
    let r = c
        .upsert_record(pb::UpsertRecordRequest {
            record: Some(record),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let what = if r.changed == 0 { "unchanged" } else { "set" };
    let view = ChangeView {
        zone: &zone,
        name: &name,
        rtype: &rtype,
        serial: r.serial,
        changed: r.changed,
    };
    out.done(
        &view,
        &format!("{name} {t} {what} in {zone} (serial {})", r.serial),
    )
}

async fn remove(
    c: &mut Client,
    out: Out,
    request: pb::DeleteRecordsRequest,
    t: &str,
) -> anyhow::Result<()> {
    let (zone, name) = (request.zone.clone(), request.name.clone());
    let rtype = name_or::<pb::RecordType>(request.r#type, "?");
    let r = c
        .delete_records(request)
        .await
        .map_err(refused)?
        .into_inner();
    if r.changed == 0 {
        bail!("no {t} record at {name} in {zone}");
    }
    let view = ChangeView {
        zone: &zone,
        name: &name,
        rtype: &rtype,
        serial: r.serial,
        changed: r.changed,
    };
    out.done(
        &view,
        &format!(
            "removed {} record(s) from {zone} (serial {})",
            r.changed, r.serial
        ),
    )
}
