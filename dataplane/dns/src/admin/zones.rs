//! Zone operations of the admin side: list, read, create, update, delete.
//!
//! Each change follows the state module's order (validate, apply to a copy,
//! compile, commit, publish); nothing changes when a step before the commit
//! fails.

use mc_kit::api::ApiError;
use mc_kit::origin::{Origin, refuse_config_owned};

use super::state::{DnsState, ZoneData, ns_records};
use super::store::{self as db, Op};
use crate::model::{MAX_ZONES, SoaParams, ZoneName, ZoneSpec};

impl DnsState {
    pub(crate) fn zones(&self) -> Vec<(ZoneSpec, usize)> {
        self.lock()
            .zones
            .values()
            .map(|z| (z.spec.clone(), z.records.len()))
            .collect()
    }

    pub(crate) fn zone(&self, name: &ZoneName) -> Result<ZoneData, ApiError> {
        self.lock()
            .zones
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no zone `{name}`")))
    }

    pub(crate) fn create_zone(
        &self,
        name: ZoneName,
        soa: SoaParams,
        nameservers: &[String],
    ) -> Result<ZoneSpec, ApiError> {
        let soa = soa.primary_from(nameservers).normalize(&name)?;
        let mut inner = self.lock();
        if inner.zones.contains_key(&name) {
            return Err(ApiError::AlreadyExists(format!(
                "zone `{name}` already exists"
            )));
        }
        if inner.zones.len() >= MAX_ZONES {
            return Err(ApiError::FailedPrecondition(format!(
                "at most {MAX_ZONES} zones"
            )));
        }
        let spec = ZoneSpec {
            name: name.clone(),
            soa,
            serial: inner.floors.next(&name, 0),
            origin: Origin::AdminApi,
        };
        let data = ZoneData::parse(
            spec.clone(),
            ns_records(&spec, nameservers, Origin::AdminApi)?,
        )?;
        let compiled = data.compile()?;
        inner.floors.record(&[(&name, data.spec.serial)])?;
        let mut ops = vec![Op::PutZone(&data.spec)];
        ops.extend(data.records.values().map(|(r, _)| Op::PutRecord(&name, r)));
        db::apply(&self.store, &ops)?;
        inner.zones.insert(name.clone(), data);
        self.publish(&mut inner, &name, Some(compiled));
        Ok(spec)
    }

    pub(crate) fn update_zone(
        &self,
        name: &ZoneName,
        soa: SoaParams,
    ) -> Result<ZoneSpec, ApiError> {
        let soa = soa.normalize(name)?;
        let mut inner = self.lock();
        let mut data = inner
            .zones
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no zone `{name}`")))?;
        refuse_config_owned(data.spec.origin, &format!("zone `{name}`"))?;
        if data.spec.soa == soa {
            return Ok(data.spec);
        }
        data.spec.soa = soa;
        data.spec.serial = inner.floors.next(name, data.spec.serial);
        let compiled = data.compile()?;
        inner.floors.record(&[(name, data.spec.serial)])?;
        db::apply(&self.store, &[Op::PutZone(&data.spec)])?;
        let spec = data.spec.clone();
        inner.zones.insert(name.clone(), data);
        self.publish(&mut inner, name, Some(compiled));
        Ok(spec)
    }

    pub(crate) fn delete_zone(&self, name: &ZoneName) -> Result<bool, ApiError> {
        let mut inner = self.lock();
        let Some(data) = inner.zones.get(name) else {
            return Ok(false);
        };
        refuse_config_owned(data.spec.origin, &format!("zone `{name}`"))?;
        db::apply(
            &self.store,
            &[Op::DeleteZone(name), Op::DeleteRecords(name)],
        )?;
        inner.zones.remove(name);
        self.publish(&mut inner, name, None);
        Ok(true)
    }
}
