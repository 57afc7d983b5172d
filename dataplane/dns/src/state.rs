//! The admin side of MCNS: the single writer of `mcns.redb` and the single
//! publisher of zone snapshots.
//!
//! Every mutation runs under one mutex held only by the admin thread:
//! validate into domain types → apply to a copy of the zone → compile it
//! (whole-zone rules) → bump the serial → commit records and serial in one
//! redb transaction → publish a new snapshot with one `ArcSwap::store` →
//! NOTIFY the secondaries. A failure before the commit changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RData};
use mc_kit::store::{Store, StoreError};
use tokio::sync::watch;

use crate::config::DnsSettings;
use crate::model::{
    self, Invalid, MAX_ZONES, Origin, RType, RecordKey, RecordSpec, SoaParams, ZoneName, ZoneSpec,
};
use crate::stats::Stats;
use crate::store::{self as db, Op};
use crate::zone::{self, Snapshot, Zone};

/// Why an admin call was refused; maps one-to-one onto gRPC codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("{0}")]
    InvalidArgument(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AdminError> for tonic::Status {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidArgument(i) => Self::invalid_argument(i.to_string()),
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::AlreadyExists(m) => Self::already_exists(m),
            AdminError::FailedPrecondition(m) => Self::failed_precondition(m),
            AdminError::Internal(m) => Self::internal(m),
        }
    }
}

/// A zone on the admin side: its spec and parsed records.
#[derive(Debug, Clone)]
pub struct ZoneData {
    pub spec: ZoneSpec,
    pub records: BTreeMap<RecordKey, (RecordSpec, RData)>,
}

impl ZoneData {
    fn compile(&self) -> Result<Zone, Invalid> {
        zone::compile(&self.spec, self.records.values().map(|(s, d)| (s, d)))
    }

    fn parse(spec: ZoneSpec, records: Vec<RecordSpec>) -> Result<Self, Invalid> {
        let mut map = BTreeMap::new();
        for r in records {
            let data = model::parse_rdata(&spec.name, r.rtype, &r.value)?;
            map.insert(r.key(), (r, data));
        }
        Ok(Self { spec, records: map })
    }
}

struct Inner {
    generation: u64,
    zones: BTreeMap<ZoneName, ZoneData>,
    compiled: HashMap<Name, Arc<Zone>>,
}

/// Shared between the admin thread (writes) and the workers (reads).
#[derive(Debug)]
pub struct Published {
    pub snapshot: ArcSwap<Snapshot>,
    /// Set to true at shutdown: workers stop receiving and accepting.
    pub stop: watch::Sender<bool>,
    pub stats: Stats,
    pub settings: Arc<DnsSettings>,
    pub workers: usize,
    /// Bumped by FlushCache; each worker clears its cache when it sees a new value.
    pub flush_all: AtomicU64,
    /// Single-name flushes: (sequence, name); workers drop names newer than they have seen.
    pub flush_names: ArcSwap<Vec<(u64, Name)>>,
    pub flush_seq: AtomicU64,
    /// Response rate limiting (shared, lock-free); `None` when off.
    pub rrl: Option<mc_firewall::RateLimiter>,
    pub tcp_active: AtomicUsize,
    /// The addresses actually bound (port 0 resolved).
    pub listen: Vec<SocketAddr>,
}

/// One worker's sockets: a UDP socket and a TCP listener per listen address.
#[derive(Debug, Default)]
pub struct WorkerSockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

pub struct DnsState {
    inner: Mutex<Inner>,
    store: Arc<Store>,
    pub published: Arc<Published>,
    config_file: PathBuf,
}

fn today_serial(old: u32) -> u32 {
    model::next_serial(old, model::today_yyyymmdd())
}

impl DnsState {
    /// Opens the store, merges the config file's zones (file wins for its
    /// own entries), binds every listen address and builds the first snapshot.
    pub fn start(
        data_dir: &Path,
        settings: DnsSettings,
        config_file: &Path,
        workers: usize,
    ) -> Result<(Self, Vec<WorkerSockets>), AdminError> {
        let store = Arc::new(Store::open(&db::path(data_dir), &db::SCHEMA)?);
        let zones = merge(&store, &settings, config_file)?;
        let mut compiled = HashMap::new();
        for z in zones.values() {
            let c = z.compile().map_err(|e| {
                AdminError::FailedPrecondition(format!(
                    "zone `{}` cannot be served: {e}",
                    z.spec.name
                ))
            })?;
            compiled.insert(c.origin.clone(), Arc::new(c));
        }
        let (sockets, listen) = bind(&settings.listen, workers)?;
        let rrl = match settings.rrl.responses_per_second {
            0 => None,
            rate => Some(
                mc_firewall::RateLimiter::new(mc_firewall::RateLimiterConfig {
                    rate_per_sec: f64::from(rate),
                    burst: if settings.rrl.burst == 0 {
                        rate
                    } else {
                        settings.rrl.burst
                    },
                    ..mc_firewall::RateLimiterConfig::default()
                })
                .map_err(|e| Invalid::new("dns.rrl", e.to_string()))?,
            ),
        };
        let (stop, _) = watch::channel(false);
        let upstreams = settings.upstreams.len();
        let published = Arc::new(Published {
            snapshot: ArcSwap::from_pointee(Snapshot::new(1, compiled.clone())),
            stop,
            stats: Stats::new(workers, upstreams),
            settings: Arc::new(settings),
            workers,
            flush_all: AtomicU64::new(0),
            flush_names: ArcSwap::from_pointee(Vec::new()),
            flush_seq: AtomicU64::new(0),
            rrl,
            tcp_active: AtomicUsize::new(0),
            listen,
        });
        tracing::info!(
            zones = compiled.len(),
            "mcns: published the first zone snapshot"
        );
        Ok((
            Self {
                inner: Mutex::new(Inner {
                    generation: 1,
                    zones,
                    compiled,
                }),
                store,
                published,
                config_file: config_file.to_owned(),
            },
            sockets,
        ))
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn refuse_config_owned(&self, what: &str, origin: Origin) -> Result<(), AdminError> {
        if origin == Origin::ConfigFile {
            return Err(AdminError::FailedPrecondition(format!(
                "{what} is defined in the config file {}; change it there",
                self.config_file.display()
            )));
        }
        Ok(())
    }

    /// Publishes `zone` (or its removal) in a new snapshot.
    fn publish(&self, inner: &mut Inner, zone: &ZoneName, compiled: Option<Zone>) {
        inner.generation += 1;
        let apex = zone.name();
        match compiled {
            Some(c) => {
                inner.compiled.insert(apex, Arc::new(c));
            }
            None => {
                inner.compiled.remove(&apex);
            }
        }
        self.published.snapshot.store(Arc::new(Snapshot::new(
            inner.generation,
            inner.compiled.clone(),
        )));
        tracing::info!(generation = inner.generation, zone = %zone, "mcns: published snapshot");
    }

    // ---------------------------------------------------------------- zones

    pub fn zones(&self) -> Vec<(ZoneSpec, usize)> {
        self.lock()
            .zones
            .values()
            .map(|z| (z.spec.clone(), z.records.len()))
            .collect()
    }

    pub fn zone(&self, name: &ZoneName) -> Result<ZoneData, AdminError> {
        self.lock()
            .zones
            .get(name)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no zone `{name}`")))
    }

    pub fn create_zone(
        &self,
        name: ZoneName,
        soa: SoaParams,
        nameservers: &[String],
    ) -> Result<ZoneSpec, AdminError> {
        let soa = soa.normalize(&name)?;
        let mut inner = self.lock();
        if inner.zones.contains_key(&name) {
            return Err(AdminError::AlreadyExists(format!(
                "zone `{name}` already exists"
            )));
        }
        if inner.zones.len() >= MAX_ZONES {
            return Err(AdminError::FailedPrecondition(format!(
                "at most {MAX_ZONES} zones"
            )));
        }
        let spec = ZoneSpec {
            name: name.clone(),
            soa,
            serial: today_serial(0),
            origin: Origin::AdminApi,
        };
        let data = ZoneData::parse(
            spec.clone(),
            ns_records(&spec, nameservers, Origin::AdminApi)?,
        )?;
        let compiled = data.compile()?;
        let mut ops = vec![Op::PutZone(&data.spec)];
        ops.extend(data.records.values().map(|(r, _)| Op::PutRecord(&name, r)));
        db::apply(&self.store, &ops)?;
        inner.zones.insert(name.clone(), data);
        self.publish(&mut inner, &name, Some(compiled));
        Ok(spec)
    }

    pub fn update_zone(&self, name: &ZoneName, soa: SoaParams) -> Result<ZoneSpec, AdminError> {
        let soa = soa.normalize(name)?;
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(name)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no zone `{name}`")))?;
        self.refuse_config_owned(&format!("zone `{name}`"), data.spec.origin)?;
        if data.spec.soa == soa {
            return Ok(data.spec);
        }
        data.spec.soa = soa;
        data.spec.serial = today_serial(data.spec.serial);
        let compiled = data.compile()?;
        db::apply(&self.store, &[Op::PutZone(&data.spec)])?;
        let spec = data.spec.clone();
        inner.zones.insert(name.clone(), data);
        self.publish(&mut inner, name, Some(compiled));
        Ok(spec)
    }

    pub fn delete_zone(&self, name: &ZoneName) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        let Some(data) = inner.zones.get(name) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("zone `{name}`"), data.spec.origin)?;
        db::apply(
            &self.store,
            &[Op::DeleteZone(name), Op::DeleteRecords(name)],
        )?;
        inner.zones.remove(name);
        self.publish(&mut inner, name, None);
        Ok(true)
    }

    // -------------------------------------------------------------- records

    /// Commits `data` (already changed) as the zone's new state.
    fn commit_zone(
        &self,
        inner: &mut Inner,
        mut data: ZoneData,
        removed: &[RecordSpec],
        added: &[RecordSpec],
        replace_all: bool,
    ) -> Result<u32, AdminError> {
        data.spec.serial = today_serial(data.spec.serial);
        let compiled = data.compile()?;
        let name = data.spec.name.clone();
        let mut ops = vec![Op::PutZone(&data.spec)];
        if replace_all {
            ops.push(Op::DeleteRecords(&name));
            ops.extend(data.records.values().map(|(r, _)| Op::PutRecord(&name, r)));
        } else {
            ops.extend(removed.iter().map(|r| Op::DeleteRecord(&name, r)));
            ops.extend(added.iter().map(|r| Op::PutRecord(&name, r)));
        }
        db::apply(&self.store, &ops)?;
        let serial = data.spec.serial;
        inner.zones.insert(name.clone(), data);
        self.publish(inner, &name, Some(compiled));
        Ok(serial)
    }

    /// Idempotent on (zone, name, type, value); returns (serial, changed).
    pub fn upsert_record(
        &self,
        zone: &ZoneName,
        name: &str,
        rtype: RType,
        ttl: u32,
        value: &str,
    ) -> Result<(u32, u32), AdminError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no zone `{zone}`")))?;
        let spec = RecordSpec::new(
            zone,
            name,
            rtype,
            ttl,
            value,
            data.spec.soa.ttl,
            Origin::AdminApi,
        )?;
        let rdata = model::parse_rdata(zone, rtype, &spec.value)?;
        let mut removed = Vec::new();
        if let Some((existing, _)) = data.records.get(&spec.key()) {
            self.refuse_config_owned(
                &format!(
                    "record `{} {} {}`",
                    existing.name, existing.rtype, existing.value
                ),
                existing.origin,
            )?;
            if existing.ttl == spec.ttl {
                return Ok((data.spec.serial, 0));
            }
            removed.push(existing.clone());
        }
        data.records.insert(spec.key(), (spec.clone(), rdata));
        let serial = self.commit_zone(
            &mut inner,
            data,
            &removed,
            std::slice::from_ref(&spec),
            false,
        )?;
        Ok((serial, 1))
    }

    /// Deletes one record (`value` given) or the RRset; returns (serial, changed).
    pub fn delete_records(
        &self,
        zone: &ZoneName,
        name: &str,
        rtype: RType,
        value: Option<&str>,
    ) -> Result<(u32, u32), AdminError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no zone `{zone}`")))?;
        let owner = model::parse_owner(zone, name)?;
        let value = match value {
            Some(v) => Some(model::canonical(&model::parse_rdata(zone, rtype, v)?)),
            None => None,
        };
        let matching: Vec<RecordSpec> = data
            .records
            .values()
            .map(|(r, _)| r)
            .filter(|r| r.name == owner && r.rtype == rtype)
            .filter(|r| value.as_ref().is_none_or(|v| *v == r.value))
            .cloned()
            .collect();
        if matching.is_empty() {
            return Ok((data.spec.serial, 0));
        }
        for r in &matching {
            self.refuse_config_owned(
                &format!("record `{} {} {}`", r.name, r.rtype, r.value),
                r.origin,
            )?;
            data.records.remove(&r.key());
        }
        let serial = self.commit_zone(&mut inner, data, &matching, &[], false)?;
        Ok((serial, u32::try_from(matching.len()).unwrap_or(u32::MAX)))
    }

    /// Replaces every record (and optionally the SOA parameters) atomically.
    pub fn replace_zone(
        &self,
        zone: &ZoneName,
        soa: Option<SoaParams>,
        records: Vec<(String, RType, u32, String)>,
        expected_serial: u32,
    ) -> Result<(u32, u32), AdminError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no zone `{zone}`")))?;
        self.refuse_config_owned(&format!("zone `{zone}`"), data.spec.origin)?;
        if expected_serial != 0 && expected_serial != data.spec.serial {
            return Err(AdminError::FailedPrecondition(format!(
                "zone `{zone}` is at serial {}, not the expected {expected_serial}",
                data.spec.serial
            )));
        }
        if let Some(soa) = soa {
            data.spec.soa = soa.normalize(zone)?;
        }
        let mut new = BTreeMap::new();
        for (i, (name, rtype, ttl, value)) in records.into_iter().enumerate() {
            let spec = RecordSpec::new(
                zone,
                &name,
                rtype,
                ttl,
                &value,
                data.spec.soa.ttl,
                Origin::AdminApi,
            )
            .map_err(|e| {
                Invalid::new(
                    format!("records[{i}].{}", e.field.trim_start_matches("record.")),
                    e.message,
                )
            })?;
            let rdata = model::parse_rdata(zone, rtype, &spec.value)?;
            new.insert(spec.key(), (spec, rdata));
        }
        let changed = new
            .keys()
            .filter(|k| !data.records.contains_key(*k))
            .count()
            + data
                .records
                .keys()
                .filter(|k| !new.contains_key(*k))
                .count();
        data.records = new;
        let serial = self.commit_zone(&mut inner, data, &[], &[], true)?;
        Ok((serial, u32::try_from(changed).unwrap_or(u32::MAX)))
    }

    /// Asks every worker to drop its forwarding cache (or one name's entries).
    pub fn flush_cache(&self, name: Option<Name>) -> u64 {
        use std::sync::atomic::Ordering;
        let before = self
            .published
            .stats
            .global
            .sum(crate::stats::global::CACHE_ENTRIES);
        match name {
            None => {
                self.published.flush_all.fetch_add(1, Ordering::Relaxed);
                before
            }
            Some(n) => {
                let seq = self.published.flush_seq.fetch_add(1, Ordering::Relaxed) + 1;
                let mut list: Vec<(u64, Name)> = self.published.flush_names.load().as_ref().clone();
                list.push((seq, n));
                // Bounded: workers apply flushes on their next query; old ones are long applied.
                if list.len() > 64 {
                    let drop = list.len() - 64;
                    list.drain(..drop);
                }
                self.published.flush_names.store(Arc::new(list));
                0
            }
        }
    }

    /// Tells the workers to stop receiving and accepting (shutdown).
    pub fn stop(&self) {
        self.published.stop.send_replace(true);
    }
}

/// Apex NS records for `nameservers` (default: the SOA primary).
fn ns_records(
    spec: &ZoneSpec,
    nameservers: &[String],
    origin: Origin,
) -> Result<Vec<RecordSpec>, Invalid> {
    let list: Vec<String> = if nameservers.is_empty() {
        vec![format!("{}.", spec.soa.primary_ns)]
    } else {
        nameservers
            .iter()
            .map(|n| model::parse_host("nameservers", n).map(|h| h.to_ascii()))
            .collect::<Result<_, _>>()?
    };
    list.iter()
        .map(|ns| RecordSpec::new(&spec.name, "@", RType::NS, 0, ns, spec.soa.ttl, origin))
        .collect()
}

/// Applies the config file's zones over the stored state (file wins for its
/// entries), rewrites the store to match and returns the merged zones.
fn merge(
    store: &Store,
    settings: &DnsSettings,
    config_file: &Path,
) -> Result<BTreeMap<ZoneName, ZoneData>, AdminError> {
    let stored = db::load(store)?;
    let file = config_file.display();
    let mut zones: BTreeMap<ZoneName, ZoneData> = BTreeMap::new();
    let mut dirty: Vec<ZoneName> = Vec::new();
    for (name, (spec, records)) in stored {
        if spec.origin == Origin::ConfigFile
            && !settings.zones.iter().any(|(z, _, _)| z.name == name)
        {
            tracing::warn!(zone = %name, %file, "zone removed from the config file: dropping it and its records");
            dirty.push(name);
            continue;
        }
        let data = ZoneData::parse(spec, records).map_err(|e| {
            AdminError::Internal(format!("stored zone `{name}` is unreadable: {e}"))
        })?;
        zones.insert(name, data);
    }
    for (spec, records, nameservers) in &settings.zones {
        let mut wanted: Vec<RecordSpec> = ns_records(spec, nameservers, Origin::ConfigFile)?;
        wanted.extend(records.iter().cloned());
        let previous = zones.remove(&spec.name);
        if previous
            .as_ref()
            .is_some_and(|p| p.spec.origin == Origin::AdminApi)
        {
            tracing::warn!(zone = %spec.name, %file, "zone defined in the config file replaces the one created through the admin API (its API records stay)");
        }
        let mut data = ZoneData::parse(
            ZoneSpec {
                serial: previous.as_ref().map_or(0, |p| p.spec.serial),
                ..spec.clone()
            },
            previous
                .as_ref()
                .map(|p| {
                    p.records
                        .values()
                        .filter(|(r, _)| r.origin == Origin::AdminApi)
                        .map(|(r, _)| r.clone())
                        .collect()
                })
                .unwrap_or_default(),
        )?;
        for r in wanted {
            let rdata = model::parse_rdata(&spec.name, r.rtype, &r.value)?;
            data.records.insert(r.key(), (r, rdata));
        }
        let same = previous.as_ref().is_some_and(|p| {
            p.spec.soa == data.spec.soa
                && p.spec.origin == data.spec.origin
                && p.records.len() == data.records.len()
                && p.records
                    .iter()
                    .all(|(k, (r, _))| data.records.get(k).is_some_and(|(n, _)| n == r))
        });
        if !same {
            data.spec.serial = today_serial(data.spec.serial);
            dirty.push(spec.name.clone());
        }
        zones.insert(spec.name.clone(), data);
    }
    if !dirty.is_empty() {
        let mut ops = Vec::new();
        for name in &dirty {
            ops.push(Op::DeleteZone(name));
            ops.push(Op::DeleteRecords(name));
            if let Some(z) = zones.get(name) {
                ops.push(Op::PutZone(&z.spec));
                ops.extend(z.records.values().map(|(r, _)| Op::PutRecord(name, r)));
            }
        }
        db::apply(store, &ops)?;
    }
    Ok(zones)
}

/// Binds a UDP socket and a TCP listener per worker on every address.
fn bind(
    listen: &[SocketAddr],
    workers: usize,
) -> Result<(Vec<WorkerSockets>, Vec<SocketAddr>), AdminError> {
    let mut per_worker: Vec<WorkerSockets> = (0..workers.max(1))
        .map(|_| WorkerSockets::default())
        .collect();
    let mut bound = Vec::new();
    for addr in listen {
        // Port 0: TCP picks a port, UDP must get the same one (retry a few times).
        let mut last_err = None;
        let mut done = false;
        for _ in 0..8 {
            let tcp = match mc_rt::socket::bind_reuseport(*addr, workers, 1024) {
                Ok(t) => t,
                Err(e) => {
                    last_err = Some(e);
                    break;
                }
            };
            let actual = tcp
                .first()
                .and_then(|l| l.local_addr().ok())
                .unwrap_or(*addr);
            match mc_rt::socket::bind_udp_reuseport(actual, workers) {
                Ok(udp) => {
                    for (w, (t, u)) in per_worker.iter_mut().zip(tcp.into_iter().zip(udp)) {
                        w.tcp.push(t);
                        w.udp.push(u);
                    }
                    bound.push(actual);
                    done = true;
                    break;
                }
                Err(e) => {
                    last_err = Some(e);
                    if addr.port() != 0 {
                        break;
                    }
                }
            }
        }
        if !done {
            return Err(AdminError::FailedPrecondition(format!(
                "dns: cannot listen on {addr}: {}",
                last_err.map_or_else(|| "unknown error".to_owned(), |e| e.to_string())
            )));
        }
    }
    Ok((per_worker, bound))
}

#[cfg(test)]
mod tests;
