//! `mc.dns.v1.DnsAdmin` on the data plane's admin socket.
//!
//! API boundary: proto messages become validated domain types here and
//! nowhere else; [`DnsState`] only ever sees checked input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use mc_kit::api::{ApiError, Invalid};
use mc_kit::origin::Origin;
use mc_proto::dns::v1 as pb;
use pb::dns_admin_server::{DnsAdmin, DnsAdminServer};
use tonic::{Request, Response, Status};

use super::state::DnsState;
use crate::model::{RType, SoaParams, ZoneName, ZoneSpec};
use crate::stats::{Global, RCODES, global, upstream as ustat};

pub struct Admin {
    state: Arc<DnsState>,
    started: Instant,
    driver: mc_rt::DriverChoice,
}

impl Admin {
    pub fn service(state: Arc<DnsState>, driver: mc_rt::DriverChoice) -> DnsAdminServer<Self> {
        DnsAdminServer::new(Self {
            state,
            started: Instant::now(),
            driver,
        })
    }

    /// NOTIFYs the zone's secondaries after a change.
    fn changed(&self, zone: &ZoneName) {
        self.state.notify_secondaries(zone);
    }
}

fn origin(o: Origin) -> i32 {
    (match o {
        Origin::ConfigFile => pb::Origin::ConfigFile,
        Origin::AdminApi => pb::Origin::AdminApi,
    }) as i32
}

fn rtype_pb(t: RType) -> i32 {
    (match t {
        RType::A => pb::RecordType::A,
        RType::AAAA => pb::RecordType::Aaaa,
        RType::CNAME => pb::RecordType::Cname,
        RType::TXT => pb::RecordType::Txt,
        RType::SRV => pb::RecordType::Srv,
        RType::MX => pb::RecordType::Mx,
        RType::PTR => pb::RecordType::Ptr,
        RType::CAA => pb::RecordType::Caa,
        RType::NS => pb::RecordType::Ns,
    }) as i32
}

fn rtype_from_pb(field: &str, v: i32) -> Result<Option<RType>, Invalid> {
    Ok(Some(match pb::RecordType::try_from(v) {
        Ok(pb::RecordType::Unspecified) => return Ok(None),
        Ok(pb::RecordType::A) => RType::A,
        Ok(pb::RecordType::Aaaa) => RType::AAAA,
        Ok(pb::RecordType::Cname) => RType::CNAME,
        Ok(pb::RecordType::Txt) => RType::TXT,
        Ok(pb::RecordType::Srv) => RType::SRV,
        Ok(pb::RecordType::Mx) => RType::MX,
        Ok(pb::RecordType::Ptr) => RType::PTR,
        Ok(pb::RecordType::Caa) => RType::CAA,
        Ok(pb::RecordType::Ns) => RType::NS,
        Err(_) => return Err(Invalid::new(field, format!("unknown record type {v}"))),
    }))
}

fn required_rtype(field: &str, v: i32) -> Result<RType, Invalid> {
    rtype_from_pb(field, v)?.ok_or_else(|| Invalid::new(field, "is required"))
}

fn soa_pb(s: &SoaParams) -> pb::Soa {
    pb::Soa {
        primary_ns: s.primary_ns.clone(),
        admin_email: s.admin_email.clone(),
        refresh: s.refresh,
        retry: s.retry,
        expire: s.expire,
        minimum: s.minimum,
        ttl: s.ttl,
    }
}

fn soa_from_pb(s: Option<pb::Soa>) -> SoaParams {
    let s = s.unwrap_or_default();
    SoaParams {
        primary_ns: s.primary_ns,
        admin_email: s.admin_email,
        refresh: s.refresh,
        retry: s.retry,
        expire: s.expire,
        minimum: s.minimum,
        ttl: s.ttl,
    }
}

fn zone_pb(z: &ZoneSpec, records: usize) -> pb::Zone {
    pb::Zone {
        name: z.name.to_string(),
        soa: Some(soa_pb(&z.soa)),
        serial: z.serial,
        record_count: records as u64,
        origin: origin(z.origin),
    }
}

fn zone_name(s: &str) -> Result<ZoneName, Status> {
    ZoneName::parse(s).map_err(invalid)
}

/// A validation failure as the kit maps it (`INVALID_ARGUMENT`, "field: message").
fn invalid(e: Invalid) -> Status {
    ApiError::from(e).into()
}

#[tonic::async_trait]
impl DnsAdmin for Admin {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let p = &self.state.published;
        let g = &p.stats.global;
        let responses: HashMap<String, u64> = RCODES
            .iter()
            .map(|(name, code)| ((*name).to_owned(), g.sum(Global::rcode(*code))))
            .chain(std::iter::once((
                "OTHER".to_owned(),
                g.sum(global::RCODE_OTHER),
            )))
            .collect();
        let upstreams = p
            .settings
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, a)| pb::UpstreamStatus {
                address: a.to_string(),
                queries: p.stats.upstreams.sum(i, ustat::QUERIES),
                failures: p.stats.upstreams.sum(i, ustat::FAILURES),
                timeouts: p.stats.upstreams.sum(i, ustat::TIMEOUTS),
            })
            .collect();
        let snap = p.snapshot.load();
        Ok(Response::new(pb::GetStatusResponse {
            version: mc_kit::version::VERSION.to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            workers: u32::try_from(p.workers).unwrap_or(u32::MAX),
            io_driver: match self.driver.driver {
                mc_rt::Driver::Uring => pb::IoDriver::IoUring,
                mc_rt::Driver::Epoll => pb::IoDriver::Epoll,
            } as i32,
            io_driver_reason: self.driver.reason.clone(),
            snapshot_generation: snap.generation,
            listen: p.listen.iter().map(ToString::to_string).collect(),
            zones: u32::try_from(snap.zones.len()).unwrap_or(u32::MAX),
            responses,
            cache_entries: g.sum(global::CACHE_ENTRIES),
            cache_hits: g.sum(global::CACHE_HITS),
            cache_misses: g.sum(global::CACHE_MISSES),
            upstreams,
            rrl_dropped: g.sum(global::RRL_DROPPED),
            malformed: g.sum(global::MALFORMED),
        }))
    }

    async fn list_zones(
        &self,
        _: Request<pb::ListZonesRequest>,
    ) -> Result<Response<pb::ListZonesResponse>, Status> {
        let zones = self
            .state
            .zones()
            .iter()
            .map(|(z, n)| zone_pb(z, *n))
            .collect();
        Ok(Response::new(pb::ListZonesResponse { zones }))
    }

    async fn get_zone(
        &self,
        req: Request<pb::GetZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        let name = zone_name(&req.into_inner().name)?;
        let z = self.state.zone(&name)?;
        Ok(Response::new(zone_pb(&z.spec, z.records.len())))
    }

    async fn create_zone(
        &self,
        req: Request<pb::CreateZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        let req = req.into_inner();
        let name = zone_name(&req.name)?;
        let spec = self
            .state
            .create_zone(name.clone(), soa_from_pb(req.soa), &req.nameservers)?;
        self.changed(&name);
        let z = self.state.zone(&name)?;
        Ok(Response::new(zone_pb(&spec, z.records.len())))
    }

    async fn update_zone(
        &self,
        req: Request<pb::UpdateZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        let req = req.into_inner();
        let name = zone_name(&req.name)?;
        let spec = self.state.update_zone(&name, soa_from_pb(req.soa))?;
        self.changed(&name);
        let z = self.state.zone(&name)?;
        Ok(Response::new(zone_pb(&spec, z.records.len())))
    }

    async fn delete_zone(
        &self,
        req: Request<pb::DeleteZoneRequest>,
    ) -> Result<Response<pb::DeleteZoneResponse>, Status> {
        let name = zone_name(&req.into_inner().name)?;
        let deleted = self.state.delete_zone(&name)?;
        Ok(Response::new(pb::DeleteZoneResponse { deleted }))
    }

    async fn list_records(
        &self,
        req: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let req = req.into_inner();
        let zone = zone_name(&req.zone)?;
        let data = self.state.zone(&zone)?;
        let name = match req.name.as_str() {
            "" => None,
            n => Some(crate::model::parse_owner(&zone, n).map_err(invalid)?),
        };
        let rtype = rtype_from_pb("type", req.r#type).map_err(invalid)?;
        let records = data
            .records
            .values()
            .map(|(r, _)| r)
            .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
            .filter(|r| rtype.is_none_or(|t| t == r.rtype))
            .map(|r| pb::Record {
                zone: zone.to_string(),
                name: r.name.clone(),
                r#type: rtype_pb(r.rtype),
                ttl: r.ttl,
                value: r.value.clone(),
                origin: origin(r.origin),
            })
            .collect();
        Ok(Response::new(pb::ListRecordsResponse {
            records,
            serial: data.spec.serial,
        }))
    }

    async fn upsert_record(
        &self,
        req: Request<pb::UpsertRecordRequest>,
    ) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = req
            .into_inner()
            .record
            .ok_or_else(|| Status::invalid_argument("record: is required"))?;
        let zone = zone_name(&r.zone)?;
        let rtype = required_rtype("record.type", r.r#type).map_err(invalid)?;
        let (serial, changed) = self
            .state
            .upsert_record(&zone, &r.name, rtype, r.ttl, &r.value)?;
        if changed > 0 {
            self.changed(&zone);
        }
        Ok(Response::new(pb::ChangeResponse { serial, changed }))
    }

    async fn delete_records(
        &self,
        req: Request<pb::DeleteRecordsRequest>,
    ) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = req.into_inner();
        let zone = zone_name(&r.zone)?;
        let rtype = required_rtype("type", r.r#type).map_err(invalid)?;
        let value = (!r.value.trim().is_empty()).then_some(r.value.as_str());
        let (serial, changed) = self.state.delete_records(&zone, &r.name, rtype, value)?;
        if changed > 0 {
            self.changed(&zone);
        }
        Ok(Response::new(pb::ChangeResponse { serial, changed }))
    }

    async fn replace_zone(
        &self,
        req: Request<pb::ReplaceZoneRequest>,
    ) -> Result<Response<pb::ChangeResponse>, Status> {
        let r = req.into_inner();
        let zone = zone_name(&r.zone)?;
        let mut records = Vec::with_capacity(r.records.len());
        for (i, rec) in r.records.into_iter().enumerate() {
            let rtype =
                required_rtype(&format!("records[{i}].type"), rec.r#type).map_err(invalid)?;
            records.push((rec.name, rtype, rec.ttl, rec.value));
        }
        let soa = r.soa.map(|s| soa_from_pb(Some(s)));
        let (serial, changed) = self
            .state
            .replace_zone(&zone, soa, records, r.expected_serial)?;
        self.changed(&zone);
        Ok(Response::new(pb::ChangeResponse { serial, changed }))
    }

    async fn flush_cache(
        &self,
        req: Request<pb::FlushCacheRequest>,
    ) -> Result<Response<pb::FlushCacheResponse>, Status> {
        let name = req.into_inner().name;
        let name = match name.trim() {
            "" => None,
            n => Some(crate::model::parse_host("name", n).map_err(invalid)?),
        };
        let removed = self.state.flush_cache(name);
        Ok(Response::new(pb::FlushCacheResponse { removed }))
    }

    async fn list_tsig_keys(
        &self,
        _: Request<pb::ListTsigKeysRequest>,
    ) -> Result<Response<pb::ListTsigKeysResponse>, Status> {
        let keys = self.state.tsig_keys().iter().map(key_pb).collect();
        Ok(Response::new(pb::ListTsigKeysResponse { keys }))
    }

    async fn put_tsig_key(
        &self,
        req: Request<pb::PutTsigKeyRequest>,
    ) -> Result<Response<pb::PutTsigKeyResponse>, Status> {
        let req = req.into_inner();
        let key = req
            .key
            .ok_or_else(|| invalid(Invalid::new("key", "is required")))?;
        let (view, generated) =
            self.state
                .put_tsig_key(&key.name, &key.algorithm, &req.secret, &key.update_zones)?;
        Ok(Response::new(pb::PutTsigKeyResponse {
            key: Some(key_pb(&view)),
            secret: generated.unwrap_or_default(),
        }))
    }

    async fn delete_tsig_key(
        &self,
        req: Request<pb::DeleteTsigKeyRequest>,
    ) -> Result<Response<pb::DeleteTsigKeyResponse>, Status> {
        let deleted = self.state.delete_tsig_key(&req.into_inner().name)?;
        Ok(Response::new(pb::DeleteTsigKeyResponse { deleted }))
    }
}

fn key_pb(k: &super::keys::KeyView) -> pb::TsigKey {
    pb::TsigKey {
        name: k.name.clone(),
        algorithm: k.algorithm.clone(),
        update_zones: k.update_zones.iter().map(ToString::to_string).collect(),
        origin: origin(k.origin),
    }
}
