//! The GeoIP country database (MaxMind DB format, e.g. GeoLite2-Country).
//!
//! The file is read whole into memory (no mmap: a file replaced or truncated
//! under a mapping would fault the workers) and verified at open, so a bad
//! file is refused before anything is published. Reloading is opening the
//! file again and rebuilding the [`crate::CompiledFirewall`]; the caller
//! swaps the result in with `arc-swap`. Workers never call into this type:
//! country blocks are expanded into the compiled table at build time.
//!
//! A network's country is its `country.iso_code` (where the addresses are
//! used), not `registered_country`; records without it, or with a code that
//! is not an assigned ISO 3166-1 alpha-2 code, have no country.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{LookupResult, PathElement, Reader, WithinOptions};

use crate::country::{CountryCode, CountrySet};
use crate::error::GeoIpError;

const ISO_CODE_PATH: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];

/// An open, verified MaxMind country (or city) database held in memory.
#[derive(Debug)]
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
}

impl GeoIp {
    /// Reads, parses and verifies the database at `path`.
    ///
    /// # Errors
    /// [`GeoIpError::Read`] if the file cannot be read, [`GeoIpError::Invalid`]
    /// if it is not a valid MaxMind DB, [`GeoIpError::UnsupportedType`] if its
    /// `database_type` names neither countries nor cities.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GeoIpError> {
        let path = path.as_ref().to_path_buf();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(source) => return Err(GeoIpError::Read { path, source }),
        };
        Self::from_bytes(bytes, path)
    }

    /// Parses and verifies a database already in memory; `path` is only used
    /// in messages and [`GeoIp::path`].
    ///
    /// # Errors
    /// As [`GeoIp::open`], except for [`GeoIpError::Read`].
    pub fn from_bytes(bytes: Vec<u8>, path: impl Into<PathBuf>) -> Result<Self, GeoIpError> {
        let path = path.into();
        let reader = match Reader::from_source(bytes) {
            Ok(reader) => reader,
            Err(source) => return Err(GeoIpError::Invalid { path, source }),
        };
        let kind = reader.metadata().database_type.as_str();
        if !["Country", "City", "Enterprise"]
            .iter()
            .any(|k| kind.contains(k))
        {
            return Err(GeoIpError::UnsupportedType {
                database_type: kind.to_owned(),
                path,
            });
        }
        if let Err(source) = reader.verify() {
            return Err(GeoIpError::Invalid { path, source });
        }
        Ok(Self { reader, path })
    }

    /// The file this database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `database_type` metadata, e.g. `"GeoLite2-Country"`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, in seconds since the Unix epoch.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The country `ip` is located in, if the database knows it.
    /// IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        let ip = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let result = self.reader.lookup(ip).ok()?;
        record_country(&result).ok().flatten()
    }

    /// Calls `f` for every database network located in a country of
    /// `blocked`, including the IPv6 aliases of the IPv4 space. Returns the
    /// number of records that could not be read (skipped).
    pub(crate) fn for_each_country_network(
        &self,
        blocked: &CountrySet,
        f: &mut impl FnMut(IpNet, CountryCode),
    ) -> usize {
        let options = WithinOptions::default().include_aliased_networks();
        let networks = match self.reader.networks(options) {
            Ok(networks) => networks,
            Err(_) => return 1,
        };
        // Many networks share one record: decode each record once.
        let mut by_offset: HashMap<usize, Option<CountryCode>> = HashMap::new();
        let mut errors = 0;
        for item in networks {
            let Ok(result) = item else {
                errors += 1;
                continue;
            };
            let Some(offset) = result.offset() else {
                continue;
            };
            let code = match by_offset.get(&offset) {
                Some(code) => *code,
                None => {
                    let code = record_country(&result).unwrap_or_else(|_| {
                        errors += 1;
                        None
                    });
                    by_offset.insert(offset, code);
                    code
                }
            };
            let Some(code) = code.filter(|c| blocked.contains(*c)) else {
                continue;
            };
            match result
                .network()
                .ok()
                .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok())
            {
                Some(net) => f(net, code),
                None => errors += 1,
            }
        }
        errors
    }
}

/// `country.iso_code` of a record, if present and a valid code.
fn record_country(
    result: &LookupResult<'_, Vec<u8>>,
) -> Result<Option<CountryCode>, maxminddb::MaxMindDbError> {
    let code: Option<&str> = result.decode_path(&ISO_CODE_PATH)?;
    Ok(code.and_then(|c| CountryCode::parse(c).ok()))
}
