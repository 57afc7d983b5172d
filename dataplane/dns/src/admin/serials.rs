//! The serial high-water mark: `<data_dir>/mcns/serials.json`, beside the
//! store and never part of a snapshot, so `mcd restore` cannot rewind it.
//!
//! Invariant: a zone's serial is recorded here (file written and synced)
//! before a change carrying it is committed and published, and every new
//! serial is greater (RFC 1982) than the recorded one. So after a restore
//! brings back an older serial, the next serial still exceeds every serial
//! ever published, and secondaries transfer the zone again. Entries outlive
//! their zone: a zone deleted and created again does not reuse serials.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mc_kit::api::ApiError;

use crate::model::{self, ZoneName};

pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("mcns").join("serials.json")
}

/// Highest serial ever published per zone.
#[derive(Debug)]
pub(crate) struct Floors {
    path: PathBuf,
    map: BTreeMap<String, u32>,
}

impl Floors {
    /// Reads the file (absent: empty). An unreadable file stops the start:
    /// guessing would risk reusing serials.
    pub(crate) fn load(data_dir: &Path) -> Result<Self, ApiError> {
        let path = path(data_dir);
        let map = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::Internal(format!(
                    "{}: {e} (it holds the highest SOA serial published per zone; fix it or remove it to start from the stored serials)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(ApiError::Internal(format!("{}: {e}", path.display()))),
        };
        Ok(Self { path, map })
    }

    /// The serial to publish after `old`: the date-based next serial, or,
    /// when that is not above the recorded high-water mark (a restore
    /// rewound the store), the next one after the mark.
    pub(crate) fn next(&self, zone: &ZoneName, old: u32) -> u32 {
        let today = model::today_yyyymmdd();
        let next = model::next_serial(old, today);
        match self.map.get(zone.as_str()) {
            Some(&mark) if !model::serial_gt(next, mark) => model::next_serial(mark, today),
            _ => next,
        }
    }

    /// Whether `serial` is behind what was published (the store was rewound).
    pub(crate) fn rewound(&self, zone: &ZoneName, serial: u32) -> bool {
        self.map
            .get(zone.as_str())
            .is_some_and(|&mark| model::serial_gt(mark, serial))
    }

    /// Records `serials` as published (only ever moves forward) and writes
    /// the file durably; an error leaves the in-memory marks unchanged.
    pub(crate) fn record(&mut self, serials: &[(&ZoneName, u32)]) -> Result<(), ApiError> {
        let mut map = self.map.clone();
        let mut changed = false;
        for &(zone, serial) in serials {
            let e = map.entry(zone.as_str().to_owned()).or_insert(serial);
            if model::serial_gt(serial, *e) {
                *e = serial;
            }
            changed |= self.map.get(zone.as_str()) != Some(e);
        }
        if !changed {
            return Ok(());
        }
        write(&self.path, &map)
            .map_err(|e| ApiError::Internal(format!("{}: {e}", self.path.display())))?;
        self.map = map;
        Ok(())
    }
}

fn write(path: &Path, map: &BTreeMap<String, u32>) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(map).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
