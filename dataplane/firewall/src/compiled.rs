//! The compiled firewall: one immutable longest-prefix-match table.
//!
//! # Structure
//!
//! Every rule is a prefix (an IP is a /32 or /128). Prefixes either nest or
//! are disjoint, so the whole rule set flattens into a sorted table of
//! disjoint address ranges, each carrying the reason of the most specific
//! prefix covering it (or none). There is one table per family: `u32` keys
//! for IPv4, `u128` for IPv6. A lookup is one binary search over a contiguous
//! `[K]` array plus one index into a parallel reason array: no pointer
//! chasing, no allocation, no lock, and the table is `Sync` by construction.
//! Adjacent ranges with the same reason are merged, so a country that GeoIP
//! splits into many adjacent networks costs one range.
//!
//! At equal prefix length an explicit IP beats a CIDR, which beats a country.
//!
//! IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is IPv4 everywhere: rules inside
//! `::ffff:0:0/96` are compiled into the IPv4 table, and [`CompiledFirewall::check`]
//! looks mapped addresses up there.
//!
//! Countries are expanded at build time by walking every network of the
//! MaxMind DB once ([`crate::GeoIp`]), including the IPv6 aliases of the IPv4
//! space (6to4 `2002::/16`, Teredo `2001::/32`) so that the table agrees with
//! a direct GeoIP lookup of the same address.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::country::{CountryCode, CountrySet};
use crate::geoip::GeoIp;
use crate::rules::{FirewallRules, Reason};

#[cfg(test)]
mod tests;

/// Counts from one build, for logs and the admin status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// IP rules compiled.
    pub ips: usize,
    /// CIDR rules compiled.
    pub cidrs: usize,
    /// GeoIP networks of blocked countries compiled.
    pub country_networks: usize,
    /// Disjoint ranges in the IPv4 table (including unblocked gaps).
    pub v4_ranges: usize,
    /// Disjoint ranges in the IPv6 table (including unblocked gaps).
    pub v6_ranges: usize,
    /// Country rules are present but no GeoIP database was given, so they
    /// block nothing. The caller should warn.
    pub countries_without_geoip: bool,
    /// Database records that could not be read while expanding countries
    /// (0 for a database that passed [`GeoIp::open`]'s verification).
    pub geoip_errors: usize,
}

/// The firewall rules compiled into one lookup structure. Immutable; build a
/// new one on change and publish it with `ArcSwap::store`.
#[derive(Debug, Clone, Default)]
pub struct CompiledFirewall {
    v4: RangeTable<u32>,
    v6: RangeTable<u128>,
    stats: BuildStats,
}

impl CompiledFirewall {
    /// Compiles `rules`, expanding country rules through `geoip`.
    ///
    /// Runs off the hot path (admin thread). Cost: a sort of all prefixes
    /// plus, when countries are blocked, one walk over the GeoIP database.
    pub fn build(rules: &FirewallRules, geoip: Option<&GeoIp>) -> Self {
        let mut v4: Vec<Entry<u32>> = Vec::new();
        let mut v6: Vec<Entry<u128>> = Vec::new();
        let mut stats = BuildStats::default();

        for &ip in &rules.ips {
            let net = match ip {
                IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
                IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
            };
            push_net(&mut v4, &mut v6, net, Reason::Ip);
            stats.ips += 1;
        }
        for &net in &rules.cidrs {
            push_net(&mut v4, &mut v6, net, Reason::Cidr);
            stats.cidrs += 1;
        }

        let mut blocked = CountrySet::default();
        for &code in &rules.countries {
            blocked.insert(code);
        }
        if !blocked.is_empty() {
            match geoip {
                Some(db) => {
                    let mut add = |net: IpNet, code: CountryCode| {
                        push_net(&mut v4, &mut v6, net, Reason::Country(code));
                        stats.country_networks += 1;
                    };
                    stats.geoip_errors = db.for_each_country_network(&blocked, &mut add);
                }
                None => stats.countries_without_geoip = true,
            }
        }

        let v4 = RangeTable::build(v4);
        let v6 = RangeTable::build(v6);
        stats.v4_ranges = v4.len();
        stats.v6_ranges = v6.len();
        Self { v4, v6, stats }
    }

    /// The most specific rule blocking `ip`, or `None` to let it through.
    /// IPv4-mapped IPv6 addresses are checked as IPv4.
    #[inline]
    pub fn check(&self, ip: IpAddr) -> Option<Reason> {
        match ip {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.lookup(u32::from(v4)),
                None => self.v6.lookup(u128::from(a)),
            },
        }
    }

    /// Counts from the build.
    pub fn stats(&self) -> BuildStats {
        self.stats
    }
}

/// Adds `net` to the table of its family, moving `::ffff:0:0/96` and its
/// sub-blocks to IPv4. Host bits are cleared.
fn push_net(v4: &mut Vec<Entry<u32>>, v6: &mut Vec<Entry<u128>>, net: IpNet, reason: Reason) {
    match net.trunc() {
        IpNet::V4(n) => v4.push(Entry::new(u32::from(n.network()), n.prefix_len(), reason)),
        IpNet::V6(n) => match mapped_v4(n) {
            Some(n4) => v4.push(Entry::new(u32::from(n4.network()), n4.prefix_len(), reason)),
            None => v6.push(Entry::new(u128::from(n.network()), n.prefix_len(), reason)),
        },
    }
}

/// `::ffff:a.b.c.d/96+n` as `a.b.c.d/n`; `None` for any other IPv6 block.
fn mapped_v4(net: Ipv6Net) -> Option<Ipv4Net> {
    let len = net.prefix_len().checked_sub(96)?;
    let addr: Ipv4Addr = net.network().to_ipv4_mapped()?;
    Ipv4Net::new(addr, len).ok()
}

/// An unsigned integer holding an address of one family.
trait Key: Copy + Ord + Default + std::fmt::Debug {
    const BITS: u8;
    /// Last address of the prefix starting at `start` with `len` bits.
    fn prefix_end(start: Self, len: u8) -> Self;
    /// `self + 1`, or `None` at the family's last address.
    fn next(self) -> Option<Self>;
}

impl Key for u32 {
    const BITS: u8 = 32;
    fn prefix_end(start: Self, len: u8) -> Self {
        start | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Key for u128 {
    const BITS: u8 = 128;
    fn prefix_end(start: Self, len: u8) -> Self {
        start | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// One prefix before flattening.
#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    start: K,
    len: u8,
    reason: Reason,
}

impl<K: Key> Entry<K> {
    fn new(start: K, len: u8, reason: Reason) -> Self {
        debug_assert!(len <= K::BITS);
        Self { start, len, reason }
    }

    fn end(&self) -> K {
        K::prefix_end(self.start, self.len)
    }
}

/// Disjoint ranges covering the whole family: range `i` is
/// `starts[i] ..= starts[i + 1] - 1` (the last one runs to the family's end)
/// and is blocked for `reasons[i]`. Empty means nothing is blocked.
#[derive(Debug, Clone, Default)]
struct RangeTable<K> {
    starts: Box<[K]>,
    reasons: Box<[Option<Reason>]>,
}

impl<K: Key> RangeTable<K> {
    fn build(mut entries: Vec<Entry<K>>) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        // Outer prefixes before inner ones; at the same prefix the strongest
        // reason first, so that deduplication keeps it.
        entries.sort_unstable_by(|a, b| {
            (a.start, a.len, std::cmp::Reverse(a.reason.rank())).cmp(&(
                b.start,
                b.len,
                std::cmp::Reverse(b.reason.rank()),
            ))
        });
        entries.dedup_by(|later, first| later.start == first.start && later.len == first.len);

        let mut out = Flattener::<K>::with_capacity(entries.len() * 2 + 1);
        // Open prefixes, each containing the next; the top is the innermost.
        let mut stack: Vec<Entry<K>> = Vec::new();
        for e in entries {
            while let Some(top) = stack.last().copied() {
                if top.end() >= e.start {
                    break;
                }
                out.emit_through(top.end(), Some(top.reason));
                stack.pop();
            }
            let enclosing = stack.last().map(|t| t.reason);
            out.emit_before(e.start, enclosing);
            stack.push(e);
        }
        while let Some(top) = stack.pop() {
            out.emit_through(top.end(), Some(top.reason));
        }
        out.finish()
    }

    #[inline]
    fn lookup(&self, key: K) -> Option<Reason> {
        // Index of the last range starting at or before `key`. The first
        // range starts at 0, so `i >= 1` whenever the table is non-empty.
        let i = self.starts.partition_point(|&s| s <= key);
        let i = i.checked_sub(1)?;
        self.reasons.get(i).copied().flatten()
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

/// Emits ranges left to right from a cursor, merging equal neighbours.
struct Flattener<K> {
    starts: Vec<K>,
    reasons: Vec<Option<Reason>>,
    /// First address not yet emitted; `None` once the family's end is reached.
    cursor: Option<K>,
}

impl<K: Key> Flattener<K> {
    fn with_capacity(n: usize) -> Self {
        Self {
            starts: Vec::with_capacity(n),
            reasons: Vec::with_capacity(n),
            cursor: Some(K::default()),
        }
    }

    /// Emits `cursor ..= end` with `reason` and moves the cursor past `end`.
    fn emit_through(&mut self, end: K, reason: Option<Reason>) {
        let Some(cursor) = self.cursor else { return };
        if cursor > end {
            return;
        }
        self.push(cursor, reason);
        self.cursor = end.next();
    }

    /// Emits `cursor ..= start - 1` with `reason` and moves the cursor to `start`.
    fn emit_before(&mut self, start: K, reason: Option<Reason>) {
        let Some(cursor) = self.cursor else { return };
        if cursor >= start {
            return;
        }
        self.push(cursor, reason);
        self.cursor = Some(start);
    }

    fn push(&mut self, start: K, reason: Option<Reason>) {
        if self.reasons.last() == Some(&reason) {
            return; // Same as the previous range: extend it.
        }
        self.starts.push(start);
        self.reasons.push(reason);
    }

    fn finish(mut self) -> RangeTable<K> {
        if let Some(cursor) = self.cursor {
            self.push(cursor, None);
        }
        RangeTable {
            starts: self.starts.into_boxed_slice(),
            reasons: self.reasons.into_boxed_slice(),
        }
    }
}
