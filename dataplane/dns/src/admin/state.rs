//! The admin side's state: the single writer of `mcns.redb` and the single
//! publisher of zone snapshots (zone and record operations are in the
//! sibling `zones` and `records` modules).
//!
//! Every mutation runs under one mutex held only by the admin thread:
//! validate into domain types → apply to a copy of the zone → compile it
//! (whole-zone rules) → bump the serial → commit records and serial in one
//! redb transaction → publish a new snapshot with one `ArcSwap::store` →
//! NOTIFY the secondaries. A failure before the commit changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RData};
use mc_kit::api::{ApiError, Invalid};
use mc_kit::origin::Origin;
use mc_kit::store::{Store, StoreError};
use tokio::sync::watch;

use super::config::DnsSettings;
use super::serials::Floors;
use super::store::{self as db, Op};
use crate::model::{self, RType, RecordKey, RecordSpec, ZoneName, ZoneSpec};
use crate::published::{Published, WorkerSockets};
use crate::stats::Stats;
use crate::zone::{self, Snapshot, Zone};

/// A zone on the admin side: its spec and parsed records.
#[derive(Debug, Clone)]
pub(crate) struct ZoneData {
    pub(crate) spec: ZoneSpec,
    pub(crate) records: BTreeMap<RecordKey, (RecordSpec, RData)>,
}

impl ZoneData {
    pub(super) fn compile(&self) -> Result<Zone, Invalid> {
        zone::compile(&self.spec, self.records.values().map(|(s, d)| (s, d)))
    }

    pub(super) fn parse(spec: ZoneSpec, records: Vec<RecordSpec>) -> Result<Self, Invalid> {
        let mut map = BTreeMap::new();
        for r in records {
            let data = model::parse_rdata(&spec.name, r.rtype, &r.value)?;
            map.insert(r.key(), (r, data));
        }
        Ok(Self { spec, records: map })
    }
}

pub(super) struct Inner {
    generation: u64,
    /// The serial high-water marks (outside the store, so outside restores).
    pub(super) floors: Floors,
    pub(super) zones: BTreeMap<ZoneName, ZoneData>,
    compiled: HashMap<Name, Arc<Zone>>,
}

pub struct DnsState {
    inner: Mutex<Inner>,
    pub(super) store: Arc<Store>,
    pub published: Arc<Published>,
    /// The workers' UPDATE plans, taken once by [`super::update::serve`].
    pub(super) updates: Mutex<Option<tokio::sync::mpsc::Receiver<crate::update::Job>>>,
    /// Seals the API's TSIG secrets in the store (`keys`).
    pub(super) sealer: mc_kit::seal::KeyFileSealer,
    /// Duplicates of the listening sockets, for a successor (`listening_sockets`).
    kept: Kept,
}

pub(super) fn today_serial(old: u32) -> u32 {
    model::next_serial(old, model::today_yyyymmdd())
}

impl DnsState {
    /// Opens the store, merges the config file's zones (file wins for its
    /// own entries), binds every listen address and builds the first snapshot.
    pub(crate) fn start(
        data_dir: &Path,
        settings: DnsSettings,
        config_file: &Path,
        workers: usize,
        mut handed: HandedOver,
    ) -> Result<(Self, Vec<WorkerSockets>), ApiError> {
        if settings.holds_secrets {
            warn_if_readable_by_others(config_file);
        }
        let store = Arc::new(Store::open(&db::path(data_dir), &db::SCHEMA).map_err(at_start)?);
        let sealer = mc_kit::seal::KeyFileSealer::load_or_create(&db::seal_key_path(data_dir))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let api_keys = super::keys::load(&store, &sealer)?;
        let mut zones = merge(&store, &settings, config_file)?;
        let floors = catch_up(&store, data_dir, &mut zones)?;
        let mut compiled = HashMap::new();
        for z in zones.values() {
            let c = z.compile().map_err(|e| {
                ApiError::FailedPrecondition(format!(
                    "zone `{}` cannot be served: {e}",
                    z.spec.name
                ))
            })?;
            compiled.insert(c.origin.clone(), Arc::new(c));
        }
        let (sockets, listen) = bind(&settings.listen, workers, &mut handed)?;
        let kept = duplicate(&sockets, &listen);
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
        let (updates_tx, updates_rx) = tokio::sync::mpsc::channel(crate::update::QUEUE);
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
            updates: Some(updates_tx),
            api_keys: ArcSwap::from_pointee(api_keys),
        });
        tracing::info!(
            zones = compiled.len(),
            "mcns: published the first zone snapshot"
        );
        Ok((
            Self {
                inner: Mutex::new(Inner {
                    generation: 1,
                    floors,
                    zones,
                    compiled,
                }),
                store,
                published,
                updates: Mutex::new(Some(updates_rx)),
                sealer,
                kept,
            },
            sockets,
        ))
    }

    /// Every listening socket (duplicated descriptors), for handing them to a
    /// successor process: (address, TCP listeners, UDP sockets).
    pub fn listening_sockets(&self) -> Kept {
        self.kept
            .iter()
            .map(|(addr, tcp, udp)| {
                let tcp = tcp.iter().filter_map(|t| t.try_clone().ok()).collect();
                let udp = udp.iter().filter_map(|u| u.try_clone().ok()).collect();
                (*addr, tcp, udp)
            })
            .collect()
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `zone` (or its removal) in a new snapshot.
    pub(super) fn publish(&self, inner: &mut Inner, zone: &ZoneName, compiled: Option<Zone>) {
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

    /// Asks every worker to drop its forwarding cache (or one name's entries).
    pub(crate) fn flush_cache(&self, name: Option<Name>) -> u64 {
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
    pub(crate) fn stop(&self) {
        self.published.stop.send_replace(true);
    }
}

/// A store failure while starting: the operator sees the detail (no client
/// is involved yet), unlike the generic answer `ApiError::from` gives.
fn at_start(e: StoreError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Apex NS records for `nameservers` (default: the SOA primary).
pub(super) fn ns_records(
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

/// Warns when `config_file`, which holds TSIG secrets, can be read by its
/// group or by everyone (a start, not a refusal: the operator decides).
pub(crate) fn warn_if_readable_by_others(config_file: &Path) {
    if let Some(mode) = readable_by_others(config_file) {
        tracing::warn!(
            file = %config_file.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the config file holds TSIG secrets (dns.tsig_keys) and is readable by group or others; chmod 600 it"
        );
    }
}

/// The file's mode when its group or others may read it.
pub(crate) fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o044 != 0).then_some(mode)
}

/// Applies the config file's zones over the stored state (file wins for its
/// entries), rewrites the store to match and returns the merged zones.
fn merge(
    store: &Store,
    settings: &DnsSettings,
    config_file: &Path,
) -> Result<BTreeMap<ZoneName, ZoneData>, ApiError> {
    let stored = db::load(store).map_err(at_start)?;
    let file = config_file.display();
    let mut zones: BTreeMap<ZoneName, ZoneData> = BTreeMap::new();
    let mut dirty: Vec<ZoneName> = Vec::new();
    // The kit's file-wins rule decides which config zones left the file; the
    // records inside a zone follow the same rule below.
    let plan = mc_kit::origin::merge(
        stored
            .iter()
            .map(|(name, (spec, _))| (name.clone(), spec.origin)),
        settings.zones.iter().map(|(z, _, _)| (z.name.clone(), ())),
    );
    for (name, (spec, records)) in stored {
        if plan.remove.contains(&name) {
            tracing::warn!(zone = %name, %file, "zone removed from the config file: dropping it and its records");
            dirty.push(name);
            continue;
        }
        let data = ZoneData::parse(spec, records)
            .map_err(|e| ApiError::Internal(format!("stored zone `{name}` is unreadable: {e}")))?;
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
        db::apply(store, &ops).map_err(at_start)?;
    }
    Ok(zones)
}

/// Loads the serial high-water marks; a zone whose stored serial is behind
/// its mark (`mcd restore` brought back an older store) gets the next serial
/// after the mark before anything is served, so secondaries see a newer
/// zone. Records every zone's serial (a store without the file seeds it).
fn catch_up(
    store: &Store,
    data_dir: &Path,
    zones: &mut BTreeMap<ZoneName, ZoneData>,
) -> Result<Floors, ApiError> {
    let mut floors = Floors::load(data_dir)?;
    let mut bumped = Vec::new();
    for (name, z) in zones.iter_mut() {
        if floors.rewound(name, z.spec.serial) {
            let old = z.spec.serial;
            z.spec.serial = floors.next(name, old);
            tracing::warn!(zone = %name, stored = old, serial = z.spec.serial, "mcns: the stored serial is behind one already published (a restore?); serving the zone at a newer serial");
            bumped.push(name.clone());
        }
    }
    let serials: Vec<(&ZoneName, u32)> = zones.iter().map(|(n, z)| (n, z.spec.serial)).collect();
    floors.record(&serials)?;
    let ops: Vec<Op<'_>> = bumped
        .iter()
        .filter_map(|n| zones.get(n))
        .map(|z| Op::PutZone(&z.spec))
        .collect();
    if !ops.is_empty() {
        db::apply(store, &ops).map_err(at_start)?;
    }
    Ok(floors)
}

/// Sockets a predecessor process handed over (the binary upgrade), by the
/// address they listen on: taken instead of binding, so queued connections
/// and datagrams carry over.
#[derive(Debug, Default)]
pub struct HandedOver(HashMap<SocketAddr, (Vec<std::net::TcpListener>, Vec<std::net::UdpSocket>)>);

impl HandedOver {
    pub fn add_tcp(&mut self, addr: SocketAddr, socket: std::net::TcpListener) {
        self.0.entry(addr).or_default().0.push(socket);
    }

    pub fn add_udp(&mut self, addr: SocketAddr, socket: std::net::UdpSocket) {
        self.0.entry(addr).or_default().1.push(socket);
    }

    fn take(
        &mut self,
        addr: SocketAddr,
    ) -> Option<(Vec<std::net::TcpListener>, Vec<std::net::UdpSocket>)> {
        self.0
            .remove(&addr)
            .filter(|(tcp, udp)| !tcp.is_empty() && !udp.is_empty())
    }
}

/// Sockets kept for a successor: (address, TCP listeners, UDP sockets).
pub type Kept = Vec<(
    SocketAddr,
    Vec<std::net::TcpListener>,
    Vec<std::net::UdpSocket>,
)>;

/// Duplicates every worker's sockets, grouped by the address they listen
/// on, so the process can hand them over later.
fn duplicate(sockets: &[WorkerSockets], listen: &[SocketAddr]) -> Kept {
    use std::net::{TcpListener, UdpSocket};
    listen
        .iter()
        .map(|a| {
            let tcp = dups(
                sockets.iter().flat_map(|w| &w.tcp),
                *a,
                TcpListener::local_addr,
                TcpListener::try_clone,
            );
            let udp = dups(
                sockets.iter().flat_map(|w| &w.udp),
                *a,
                UdpSocket::local_addr,
                UdpSocket::try_clone,
            );
            (*a, tcp, udp)
        })
        .collect()
}

/// Duplicates of the sockets among `all` that listen on `addr`.
fn dups<'a, S: 'a>(
    all: impl Iterator<Item = &'a S>,
    addr: SocketAddr,
    local: fn(&S) -> std::io::Result<SocketAddr>,
    clone: fn(&S) -> std::io::Result<S>,
) -> Vec<S> {
    all.filter(|s| local(s).is_ok_and(|b| same_socket(addr, b)))
        .filter_map(|s| clone(s).ok())
        .collect()
}

fn same_socket(listed: SocketAddr, bound: SocketAddr) -> bool {
    listed == bound || (listed.port() == bound.port() && listed.ip().is_unspecified())
}

/// Binds a UDP socket and a TCP listener per worker on every address.
fn bind(
    listen: &[SocketAddr],
    workers: usize,
    handed: &mut HandedOver,
) -> Result<(Vec<WorkerSockets>, Vec<SocketAddr>), ApiError> {
    let mut per_worker: Vec<WorkerSockets> = (0..workers.max(1))
        .map(|_| WorkerSockets::default())
        .collect();
    let mut bound = Vec::new();
    for addr in listen {
        if let Some((tcp, udp)) = handed.take(*addr) {
            // Worker `i` takes sockets i, i+W, …: a predecessor with more
            // workers leaves no queue unread.
            for (i, t) in tcp.into_iter().enumerate() {
                if let Some(w) = per_worker.get_mut(i % workers.max(1)) {
                    w.tcp.push(t);
                }
            }
            for (i, u) in udp.into_iter().enumerate() {
                if let Some(w) = per_worker.get_mut(i % workers.max(1)) {
                    w.udp.push(u);
                }
            }
            bound.push(*addr);
            continue;
        }
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
            return Err(ApiError::FailedPrecondition(format!(
                "dns: cannot listen on {addr}: {}",
                last_err.map_or_else(|| "unknown error".to_owned(), |e| e.to_string())
            )));
        }
    }
    Ok((per_worker, bound))
}

#[cfg(test)]
mod tests;
