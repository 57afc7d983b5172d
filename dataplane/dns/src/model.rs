//! MCNS's validated domain types.
//!
//! Admin API requests and config-file entries become these types through the
//! functions here only: names are checked and lower-cased, record values are
//! parsed as zone-file rdata by hickory's zone parser and stored in one
//! canonical presentation form, TTLs are range-checked. Whole-zone rules
//! (CNAME exclusivity, apex NS, delegations) are checked when a zone is
//! compiled (`zone::compile`), before anything is committed.

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::{Name, RData, RecordType};
use mc_kit::api::Invalid;
use mc_kit::clock::unix_now;
// Where an entry came from (the config file or the admin API); stored as
// before (`config_file` / `admin_api`).
use mc_kit::origin::Origin;
use serde::{Deserialize, Serialize};

/// Largest TTL accepted (7 days); the smallest is 1 s (0 means "default").
pub(crate) const MAX_TTL: u32 = 604_800;
/// Bounds that keep one zone's snapshot and one change's work small.
pub(crate) const MAX_RECORDS_PER_ZONE: usize = 100_000;
pub(crate) const MAX_ZONES: usize = 1_000;
/// Longest rdata presentation accepted (TXT with several strings fits).
pub(crate) const MAX_VALUE_LEN: usize = 4_000;

/// The record types MCNS serves from its zones (SOA is implied by the zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)] // the mnemonics as the RFCs and zone files spell them
pub(crate) enum RType {
    A,
    AAAA,
    CNAME,
    TXT,
    SRV,
    MX,
    PTR,
    CAA,
    NS,
}

impl RType {
    pub(crate) const ALL: [Self; 9] = [
        Self::A,
        Self::AAAA,
        Self::CNAME,
        Self::TXT,
        Self::SRV,
        Self::MX,
        Self::PTR,
        Self::CAA,
        Self::NS,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CNAME => "CNAME",
            Self::TXT => "TXT",
            Self::SRV => "SRV",
            Self::MX => "MX",
            Self::PTR => "PTR",
            Self::CAA => "CAA",
            Self::NS => "NS",
        }
    }

    pub(crate) fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::AAAA => RecordType::AAAA,
            Self::CNAME => RecordType::CNAME,
            Self::TXT => RecordType::TXT,
            Self::SRV => RecordType::SRV,
            Self::MX => RecordType::MX,
            Self::PTR => RecordType::PTR,
            Self::CAA => RecordType::CAA,
            Self::NS => RecordType::NS,
        }
    }
}

impl FromStr for RType {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Invalid::new(
                    "type",
                    format!(
                        "`{s}` is not one of A, AAAA, CNAME, TXT, SRV, MX, PTR, CAA, NS (SOA belongs to the zone)"
                    ),
                )
            })
    }
}

impl fmt::Display for RType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks one label: 1..=63 of letters, digits, `-`, `_`; no leading or trailing `-`.
fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 63 {
        return Err("every label must be 1 to 63 characters".to_owned());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "label `{label}`: only letters, digits, `-` and `_` are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label `{label}` may not start or end with `-`"));
    }
    Ok(())
}

/// An absolute host name (`ns1.example.net`, trailing dot optional), lower-cased.
pub(crate) fn parse_host(field: &str, s: &str) -> Result<Name, Invalid> {
    let t = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if t.is_empty() || t.len() > 253 {
        return Err(Invalid::new(
            field,
            format!("`{s}` must be 1 to 253 characters"),
        ));
    }
    for label in t.split('.') {
        check_label(label).map_err(|m| Invalid::new(field, format!("`{s}`: {m}")))?;
    }
    let mut name = Name::from_ascii(&t).map_err(|e| Invalid::new(field, format!("`{s}`: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A zone name: absolute, lower-cased, at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct ZoneName(String);

impl ZoneName {
    pub(crate) fn parse(s: &str) -> Result<Self, Invalid> {
        let name = parse_host("zone", s)?;
        if name.num_labels() < 2 {
            return Err(Invalid::new(
                "zone",
                format!("`{s}`: a zone needs at least two labels (no TLDs or the root)"),
            ));
        }
        Ok(Self(name.to_ascii().trim_end_matches('.').to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone's apex as an absolute name.
    pub(crate) fn name(&self) -> Name {
        let mut n = Name::from_ascii(&self.0).unwrap_or_else(|_| Name::root());
        n.set_fqdn(true);
        n
    }
}

impl TryFrom<String> for ZoneName {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<ZoneName> for String {
    fn from(z: ZoneName) -> String {
        z.0
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record owner relative to its zone: `@` (apex), `www`, `_sip._tcp`,
/// `*` or `*.dev` (wildcards: `*` only as the whole first label). An
/// absolute name inside the zone (`www.example.net.`) is accepted and made relative.
pub(crate) fn parse_owner(zone: &ZoneName, s: &str) -> Result<String, Invalid> {
    let field = "record.name";
    let lower = s.trim().to_ascii_lowercase();
    if lower.is_empty() || lower == "@" {
        return Ok("@".to_owned());
    }
    let rel = match lower.strip_suffix('.') {
        Some(abs) if abs == zone.as_str() => return Ok("@".to_owned()),
        Some(abs) => abs
            .strip_suffix(&format!(".{}", zone.as_str()))
            .ok_or_else(|| Invalid::new(field, format!("`{s}` is not inside zone `{zone}`")))?
            .to_owned(),
        None => lower,
    };
    if rel.len() + zone.as_str().len() + 1 > 253 {
        return Err(Invalid::new(
            field,
            format!("`{s}`: the full name is longer than 253 characters"),
        ));
    }
    for (i, label) in rel.split('.').enumerate() {
        if label == "*" && i == 0 {
            continue;
        }
        check_label(label).map_err(|m| Invalid::new(field, format!("`{s}`: {m}")))?;
    }
    Ok(rel)
}

/// The absolute name of relative owner `rel` in `zone`.
pub(crate) fn owner_name(zone: &ZoneName, rel: &str) -> Name {
    let text = if rel == "@" {
        zone.as_str().to_owned()
    } else {
        format!("{rel}.{}", zone.as_str())
    };
    let mut n = Name::from_ascii(&text).unwrap_or_else(|_| zone.name());
    n.set_fqdn(true);
    n
}

/// Parses `value` as the rdata of a `rtype` record in a zone file whose
/// origin is `zone` (relative names are relative to the zone).
pub(crate) fn parse_rdata(zone: &ZoneName, rtype: RType, value: &str) -> Result<RData, Invalid> {
    let field = "record.value";
    let value = value.trim();
    if value.is_empty() {
        return Err(Invalid::new(field, "is empty"));
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_VALUE_LEN} characters"),
        ));
    }
    if value.contains(['\n', '\r', '(', ')']) || value.starts_with('$') {
        return Err(Invalid::new(
            field,
            format!("`{value}`: one line of rdata, without parentheses"),
        ));
    }
    let expected = match rtype {
        RType::A | RType::AAAA | RType::CNAME | RType::NS | RType::PTR => Some(1),
        RType::MX => Some(2),
        RType::SRV => Some(4),
        RType::CAA => Some(3),
        RType::TXT => None,
    };
    if let Some(n) = expected
        && token_count(value) != n
    {
        return Err(Invalid::new(
            field,
            format!("`{value}` is not valid {rtype} rdata: expected {n} field(s)"),
        ));
    }
    let text = format!("@ 60 IN {} {value}\n", rtype.as_str());
    let parser = hickory_proto::serialize::txt::Parser::new(text, None, Some(zone.name()));
    let (_, sets) = parser
        .parse()
        .map_err(|e| Invalid::new(field, format!("`{value}` is not valid {rtype} rdata: {e}")))?;
    let mut records = sets
        .into_values()
        .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let (Some(record), None) = (records.next(), records.next()) else {
        return Err(Invalid::new(
            field,
            format!("`{value}` must be exactly one {rtype} value"),
        ));
    };
    if record.record_type() != rtype.record_type() {
        return Err(Invalid::new(
            field,
            format!("`{value}` is not {rtype} rdata"),
        ));
    }
    let data = split_txt(record.data);
    // Names in rdata must be plain host names (a CNAME to `*.x` or `a b` is refused).
    if let Some(target) = rdata_target(&data) {
        let t = target.to_ascii();
        // "." (the RFC 2782 / RFC 7505 "no service" target) is allowed.
        if !target.is_root() {
            parse_host(field, &t)?;
        }
    }
    Ok(data)
}

/// Longest character-string on the wire (RFC 1035 §3.3: one length byte).
pub(crate) const MAX_CHARACTER_STRING: usize = 255;

/// Splits every TXT string longer than 255 bytes into consecutive 255-byte
/// character-strings, as zone-file tools do (a DKIM key pasted as one string
/// stays one value; resolvers concatenate the strings back). Strings already
/// given separately (`"a" "b"`) are kept as given. Other rdata is unchanged.
fn split_txt(data: RData) -> RData {
    match data {
        RData::TXT(txt) if txt.txt_data.iter().any(|s| s.len() > MAX_CHARACTER_STRING) => {
            let parts: Vec<&[u8]> = txt
                .txt_data
                .iter()
                .flat_map(|s| {
                    if s.is_empty() {
                        vec![&s[..]]
                    } else {
                        s.chunks(MAX_CHARACTER_STRING).collect()
                    }
                })
                .collect();
            RData::TXT(hickory_proto::rr::rdata::TXT::from_bytes(parts))
        }
        other => other,
    }
}

/// Encodes `owner ttl IN rdata` as it would go on the wire: a record that is
/// accepted must be servable, so whatever the encoder refuses is refused
/// here (as `field`), at write time, instead of SERVFAILing every query.
pub(crate) fn check_encodes(
    field: &str,
    owner: &Name,
    ttl: u32,
    data: &RData,
) -> Result<(), Invalid> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let record = hickory_proto::rr::Record::from_rdata(owner.clone(), ttl, data.clone());
    let mut buf = Vec::new();
    let mut encoder = BinEncoder::new(&mut buf);
    record
        .emit(&mut encoder)
        .map_err(|e| Invalid::new(field, format!("cannot be encoded as a DNS record: {e}")))?;
    if buf.len() > usize::from(u16::MAX) {
        return Err(Invalid::new(
            field,
            "the encoded record is larger than 65535 bytes",
        ));
    }
    Ok(())
}

/// Whitespace-separated fields, a double-quoted string counting as one.
fn token_count(value: &str) -> usize {
    let mut count = 0;
    let mut in_token = false;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if !in_token {
                    in_token = true;
                    count += 1;
                }
            }
            '"' => {
                if !in_token {
                    in_token = true;
                    count += 1;
                }
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => in_token = false,
            _ => {
                if !in_token {
                    in_token = true;
                    count += 1;
                }
            }
        }
    }
    count
}

/// The domain name an rdata points at (CNAME, NS, PTR, MX exchange, SRV target).
pub(crate) fn rdata_target(data: &RData) -> Option<&Name> {
    match data {
        RData::CNAME(n) => Some(&n.0),
        RData::NS(n) => Some(&n.0),
        RData::PTR(n) => Some(&n.0),
        RData::MX(mx) => Some(&mx.exchange),
        RData::SRV(srv) => Some(&srv.target),
        _ => None,
    }
}

/// One canonical presentation form per rdata, so equal values compare equal.
pub(crate) fn canonical(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::CAA(_) => data.to_string(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// SOA parameters of a zone; seconds throughout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SoaParams {
    /// MNAME, absolute, without the trailing dot.
    pub(crate) primary_ns: String,
    /// RNAME as a mail address (`hostmaster@example.net`).
    pub(crate) admin_email: String,
    pub(crate) refresh: u32,
    pub(crate) retry: u32,
    pub(crate) expire: u32,
    /// Negative-caching TTL (RFC 2308).
    pub(crate) minimum: u32,
    /// TTL of the SOA record, and the default TTL of the zone's records.
    pub(crate) ttl: u32,
}

pub(crate) const DEFAULT_REFRESH: u32 = 3_600;
pub(crate) const DEFAULT_RETRY: u32 = 600;
pub(crate) const DEFAULT_EXPIRE: u32 = 1_209_600;
pub(crate) const DEFAULT_MINIMUM: u32 = 300;
pub(crate) const DEFAULT_TTL: u32 = 3_600;

impl SoaParams {
    /// An unset MNAME follows the zone's first apex NS (`--ns`), so the SOA
    /// names a server the zone actually delegates to; with no NS given,
    /// `normalize` falls back to `ns1.<zone>`.
    pub(crate) fn primary_from(mut self, nameservers: &[String]) -> Self {
        if self.primary_ns.trim().is_empty()
            && let Some(first) = nameservers.first()
        {
            self.primary_ns = first.clone();
        }
        self
    }

    /// Fills zeros with defaults (`primary_ns` defaults to `ns1.<zone>`,
    /// `admin_email` to `hostmaster@<zone>`), then validates.
    pub(crate) fn normalize(mut self, zone: &ZoneName) -> Result<Self, Invalid> {
        if self.primary_ns.trim().is_empty() {
            self.primary_ns = format!("ns1.{zone}");
        }
        if self.admin_email.trim().is_empty() {
            self.admin_email = format!("hostmaster@{zone}");
        }
        let ns = parse_host("soa.primary_ns", &self.primary_ns)?;
        self.primary_ns = ns.to_ascii().trim_end_matches('.').to_owned();
        let (local, domain) = self.admin_email.split_once('@').ok_or_else(|| {
            Invalid::new(
                "soa.admin_email",
                format!("`{}` is not a mail address", self.admin_email),
            )
        })?;
        if local.is_empty()
            || local.len() > 63
            || !local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'))
        {
            return Err(Invalid::new(
                "soa.admin_email",
                format!(
                    "`{}`: the local part must be letters, digits, `-`, `_`, `+` (no dots)",
                    self.admin_email
                ),
            ));
        }
        parse_host("soa.admin_email", domain)?;
        self.admin_email = self.admin_email.to_ascii_lowercase();
        for (field, v, default) in [
            ("soa.refresh", &mut self.refresh, DEFAULT_REFRESH),
            ("soa.retry", &mut self.retry, DEFAULT_RETRY),
            ("soa.expire", &mut self.expire, DEFAULT_EXPIRE),
            ("soa.minimum", &mut self.minimum, DEFAULT_MINIMUM),
            ("soa.ttl", &mut self.ttl, DEFAULT_TTL),
        ] {
            if *v == 0 {
                *v = default;
            }
            let max = if field == "soa.expire" {
                2_419_200 * 10
            } else {
                MAX_TTL
            };
            if *v > max {
                return Err(Invalid::new(field, format!("at most {max} seconds")));
            }
        }
        if self.retry > self.refresh {
            return Err(Invalid::new("soa.retry", "must not exceed soa.refresh"));
        }
        if self.expire < self.refresh {
            return Err(Invalid::new("soa.expire", "must be at least soa.refresh"));
        }
        Ok(self)
    }

    /// RNAME: `hostmaster@example.net` → `hostmaster.example.net.`.
    pub(crate) fn rname(&self) -> Name {
        let text = self.admin_email.replacen('@', ".", 1);
        let mut n = Name::from_ascii(&text).unwrap_or_else(|_| Name::root());
        n.set_fqdn(true);
        n
    }

    pub(crate) fn mname(&self) -> Name {
        let mut n = Name::from_ascii(&self.primary_ns).unwrap_or_else(|_| Name::root());
        n.set_fqdn(true);
        n
    }

    /// The negative-caching TTL: min(SOA TTL, minimum) (RFC 2308 §5).
    pub(crate) fn negative_ttl(&self) -> u32 {
        self.ttl.min(self.minimum)
    }
}

/// A zone as stored: SOA parameters, the current serial and its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ZoneSpec {
    pub(crate) name: ZoneName,
    pub(crate) soa: SoaParams,
    pub(crate) serial: u32,
    pub(crate) origin: Origin,
}

/// One record as stored. `name` is relative (`@` for the apex) and
/// lower-cased; `value` is the canonical presentation form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordSpec {
    pub(crate) name: String,
    pub(crate) rtype: RType,
    pub(crate) ttl: u32,
    pub(crate) value: String,
    pub(crate) origin: Origin,
}

/// Records are identified by (name, type, canonical value).
pub(crate) type RecordKey = (String, RType, String);

impl RecordSpec {
    /// Validates a record for `zone`: owner, value (made canonical) and TTL
    /// (0 becomes `default_ttl`).
    pub(crate) fn new(
        zone: &ZoneName,
        name: &str,
        rtype: RType,
        ttl: u32,
        value: &str,
        default_ttl: u32,
        origin: Origin,
    ) -> Result<Self, Invalid> {
        let name = parse_owner(zone, name)?;
        let data = parse_rdata(zone, rtype, value)?;
        let ttl = if ttl == 0 { default_ttl } else { ttl };
        if ttl > MAX_TTL {
            return Err(Invalid::new(
                "record.ttl",
                format!("{ttl} is above the maximum of {MAX_TTL} seconds"),
            ));
        }
        check_encodes("record.value", &owner_name(zone, &name), ttl, &data)?;
        Ok(Self {
            name,
            rtype,
            ttl,
            value: canonical(&data),
            origin,
        })
    }

    pub(crate) fn key(&self) -> RecordKey {
        (self.name.clone(), self.rtype, self.value.clone())
    }
}

/// The next serial after `old` in YYYYMMDDNN form for the day `today`
/// (YYYYMMDD): today's first serial, or `old + 1` when that is already later.
pub(crate) fn next_serial(old: u32, today: u32) -> u32 {
    let base = today.saturating_mul(100);
    if old < base {
        base
    } else {
        old.wrapping_add(1)
    }
}

/// `a > b` in RFC 1982 serial-number arithmetic (32-bit).
pub(crate) fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Today's date as YYYYMMDD (UTC).
pub(crate) fn today_yyyymmdd() -> u32 {
    let secs = u64::try_from(unix_now()).unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    u32::try_from(y * 10_000 + m * 100 + d).unwrap_or(0)
}

#[cfg(test)]
mod tests;
