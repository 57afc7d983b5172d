//! Record operations of the admin side: upsert, delete, replace a zone's
//! records. Every change bumps the zone's serial (above its high-water
//! mark, `serials`) in the same redb transaction as the records, then
//! publishes the recompiled zone.

use std::collections::BTreeMap;

use mc_kit::api::{ApiError, Invalid};
use mc_kit::origin::{Origin, refuse_config_owned};

use super::state::{DnsState, Inner, ZoneData};
use super::store::{self as db, Op};
use crate::model::{self, RType, RecordSpec, SoaParams, ZoneName};

impl DnsState {
    /// Commits `data` (already changed) as the zone's new state.
    pub(super) fn commit_zone(
        &self,
        inner: &mut Inner,
        mut data: ZoneData,
        removed: &[RecordSpec],
        added: &[RecordSpec],
        replace_all: bool,
    ) -> Result<u32, ApiError> {
        let name = data.spec.name.clone();
        data.spec.serial = inner.floors.next(&name, data.spec.serial);
        let compiled = data.compile()?;
        inner.floors.record(&[(&name, data.spec.serial)])?;
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
    pub(crate) fn upsert_record(
        &self,
        zone: &ZoneName,
        name: &str,
        rtype: RType,
        ttl: u32,
        value: &str,
    ) -> Result<(u32, u32), ApiError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no zone `{zone}`")))?;
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
            refuse_config_owned(
                existing.origin,
                &format!(
                    "record `{} {} {}`",
                    existing.name, existing.rtype, existing.value
                ),
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
    pub(crate) fn delete_records(
        &self,
        zone: &ZoneName,
        name: &str,
        rtype: RType,
        value: Option<&str>,
    ) -> Result<(u32, u32), ApiError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no zone `{zone}`")))?;
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
            refuse_config_owned(
                r.origin,
                &format!("record `{} {} {}`", r.name, r.rtype, r.value),
            )?;
            data.records.remove(&r.key());
        }
        let serial = self.commit_zone(&mut inner, data, &matching, &[], false)?;
        Ok((serial, u32::try_from(matching.len()).unwrap_or(u32::MAX)))
    }

    /// Replaces every record (and optionally the SOA parameters) atomically.
    pub(crate) fn replace_zone(
        &self,
        zone: &ZoneName,
        soa: Option<SoaParams>,
        records: Vec<(String, RType, u32, String)>,
        expected_serial: u32,
    ) -> Result<(u32, u32), ApiError> {
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(zone)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no zone `{zone}`")))?;
        refuse_config_owned(data.spec.origin, &format!("zone `{zone}`"))?;
        if expected_serial != 0 && expected_serial != data.spec.serial {
            return Err(ApiError::FailedPrecondition(format!(
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
}
