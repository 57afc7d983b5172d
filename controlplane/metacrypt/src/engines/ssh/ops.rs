//! The engine's operations: the CA (create or import, read), profiles,
//! signing, issued certificates and revocation into the KRL.
//!
//! Invariant: each operation checks its whole input before its write
//! transaction; the transaction re-reads the CA row it changes (counter,
//! KRL version) and writes the sealed rows, the public row and the audit
//! row together.

use base64::Engine as _;
use mc_kit::clock::unix_now;
use mc_kit::store::json::WriteTx;

use super::model::{
    Ca, CaInfo, CaKeyType, CaRequest, CertRecord, Profile, PublicCa, RevokeAnswer, RevokeRequest,
    RevokedSerial, SignRequest, Signed,
};
use super::tables::{SSH_CA, SSH_CERTS, SSH_PROFILES};
use super::{
    BACKDATE_SECS, MAX_CERTS, MAX_KEY_IDS, MAX_LIST, MAX_PROFILES, MAX_REVOKE, cert, krl, profile,
    public,
};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::mount_key;

fn audit(
    a: &Authorized<'_>,
    tx: &WriteTx,
    action: &str,
    path: &str,
    detail: String,
) -> Result<(), CryptError> {
    let target = format!("{}/{}", a.mount().name, path);
    tx.audit(crate::core::event(a.caller(), action, &target, detail))?;
    Ok(())
}

fn ca_key(a: &Authorized<'_>) -> Vec<u8> {
    mount_key(a.mount().id, b"")
}

fn no_ca() -> CryptError {
    CryptError::FailedPrecondition("the mount has no CA yet: POST ca first".to_owned())
}

fn ca_tx(a: &Authorized<'_>, tx: &WriteTx) -> Result<Ca, CryptError> {
    get_sealed::<Ca>(tx, a.keys(), a.mount().id, SSH_CA, &ca_key(a))?.ok_or_else(no_ca)
}

fn ca_now(a: &Authorized<'_>) -> Result<Ca, CryptError> {
    Snapshot::begin(a.store())?
        .get::<Ca>(a.keys(), a.mount().id, SSH_CA, &ca_key(a))?
        .ok_or_else(no_ca)
}

fn info(ca: &Ca) -> CaInfo {
    CaInfo {
        key_type: ca.key_type,
        public_key: ca.public_key.clone(),
        next_serial: ca.next_serial,
        krl_version: ca.krl_version,
        revoked_serials: ca.revoked_serials.len(),
        revoked_key_ids: ca.revoked_key_ids.len(),
        created_at: ca.created_at,
    }
}

/// The public row for `ca`: its key line and a KRL re-encoded now
/// (expired serials dropped from `ca` first).
fn public_row(a: &Authorized<'_>, ca: &mut Ca) -> Result<PublicCa, CryptError> {
    let now = u64::try_from(unix_now()).unwrap_or_default();
    ca.revoked_serials.retain(|r| r.valid_before > now);
    let key = cert::load(&ca.private_key)?;
    let blob = cert::public_blob(&key)?;
    let comment = format!("metacrypt ssh CA {}", a.mount().name);
    let bytes = krl::Krl {
        version: ca.krl_version,
        generated: now,
        comment: &comment,
        ca_key: &blob,
        serials: ca.revoked_serials.iter().map(|r| r.serial).collect(),
        key_ids: ca.revoked_key_ids.clone(),
    }
    .encode();
    Ok(PublicCa {
        public_key: ca.public_key.clone(),
        krl: base64::engine::general_purpose::STANDARD.encode(bytes),
        krl_version: ca.krl_version,
    })
}

/// `POST ca`: generates (`key_type`) or imports (`private_key`) the CA; once.
pub(crate) fn create_ca(a: &Authorized<'_>, r: &CaRequest) -> Result<CaInfo, CryptError> {
    let comment = format!("metacrypt-ssh-ca@{}", a.mount().name);
    let (kt, key) = match (&r.private_key, r.key_type) {
        (Some(_), Some(_)) => {
            return Err(CryptError::invalid(
                "key_type",
                "give key_type or private_key, not both",
            ));
        }
        (Some(pem), None) => cert::import(pem, &comment)?,
        (None, kt) => {
            let kt = kt.unwrap_or(CaKeyType::Ed25519);
            (kt, cert::generate(kt, &comment)?)
        }
    };
    let mut ca = Ca {
        key_type: kt,
        private_key: cert::to_pem(&key)?,
        public_key: cert::public_line(&key)?,
        next_serial: 1,
        krl_version: 1,
        revoked_serials: Vec::new(),
        revoked_key_ids: Vec::new(),
        created_at: unix_now(),
    };
    let row = public_row(a, &mut ca)?;
    let tx = WriteTx::begin(a.store())?;
    let id = a.mount().id;
    if get_sealed::<Ca>(&tx, a.keys(), id, SSH_CA, &ca_key(a))?.is_some() {
        return Err(CryptError::AlreadyExists(
            "the mount already has a CA".to_owned(),
        ));
    }
    put_sealed(&tx, a.keys(), id, SSH_CA, &ca_key(a), &ca)?;
    public::put(&tx, &a.mount().name, id, &row)?;
    let how = if r.private_key.is_some() {
        "imported"
    } else {
        "generated"
    };
    audit(a, &tx, "ssh.ca.create", "ca", format!("{how} {kt:?}"))?;
    tx.commit()?;
    Ok(info(&ca))
}

pub(crate) fn get_ca(a: &Authorized<'_>) -> Result<CaInfo, CryptError> {
    Ok(info(&ca_now(a)?))
}

fn profile_key(a: &Authorized<'_>, name: &str) -> Vec<u8> {
    mount_key(a.mount().id, name.as_bytes())
}

pub(crate) fn list_profiles(a: &Authorized<'_>) -> Result<Vec<String>, CryptError> {
    let id = a.mount().id;
    Ok(Snapshot::begin(a.store())?
        .keys(SSH_PROFILES, &mount_key(id, b""), MAX_PROFILES)?
        .into_iter()
        .map(|k| String::from_utf8_lossy(&k[8..]).into_owned())
        .collect())
}

pub(crate) fn get_profile(a: &Authorized<'_>, name: &str) -> Result<Profile, CryptError> {
    crate::engines::pki::ops::check_name(name)?;
    Snapshot::begin(a.store())?
        .get::<Profile>(a.keys(), a.mount().id, SSH_PROFILES, &profile_key(a, name))?
        .ok_or_else(|| CryptError::NotFound(format!("no profile {name}")))
}

pub(crate) fn put_profile(
    a: &Authorized<'_>,
    name: &str,
    p: Profile,
) -> Result<Profile, CryptError> {
    crate::engines::pki::ops::check_name(name)?;
    let p = p.check()?;
    let id = a.mount().id;
    let key = profile_key(a, name);
    let tx = WriteTx::begin(a.store())?;
    let exists = get_sealed::<Profile>(&tx, a.keys(), id, SSH_PROFILES, &key)?.is_some();
    if !exists && list_profiles(a)?.len() >= MAX_PROFILES {
        return Err(CryptError::invalid(
            "name",
            format!("at most {MAX_PROFILES} profiles"),
        ));
    }
    put_sealed(&tx, a.keys(), id, SSH_PROFILES, &key, &p)?;
    audit(
        a,
        &tx,
        "ssh.profile.put",
        &format!("profiles/{name}"),
        String::new(),
    )?;
    tx.commit()?;
    Ok(p)
}

pub(crate) fn delete_profile(a: &Authorized<'_>, name: &str) -> Result<(), CryptError> {
    crate::engines::pki::ops::check_name(name)?;
    let tx = WriteTx::begin(a.store())?;
    if !tx.delete(SSH_PROFILES, &profile_key(a, name))? {
        return Err(CryptError::NotFound(format!("no profile {name}")));
    }
    audit(
        a,
        &tx,
        "ssh.profile.delete",
        &format!("profiles/{name}"),
        String::new(),
    )?;
    tx.commit()?;
    Ok(())
}

/// A key id: 1–256 printable bytes (spaces allowed).
fn check_key_id(field: &str, id: &str) -> Result<(), CryptError> {
    if id.is_empty() || id.len() > 256 || id.bytes().any(|b| !(b' '..=b'~').contains(&b)) {
        return Err(CryptError::invalid(field, "1 to 256 printable characters"));
    }
    Ok(())
}

/// `POST sign-key/{profile}`: signs `r.public_key` into a certificate.
pub(crate) fn sign(
    a: &Authorized<'_>,
    profile_name: &str,
    r: &SignRequest,
) -> Result<Signed, CryptError> {
    let p = get_profile(a, profile_name)?;
    let checked = profile::check_request(&p, r)?;
    let subject = cert::parse_subject(&r.public_key)?;
    if let Some(id) = &r.key_id {
        check_key_id("key_id", id)?;
    }
    let ca = ca_now(a)?;
    let ca_private = cert::load(&ca.private_key)?;
    if ca_private.public_key().key_data() == &subject {
        return Err(CryptError::invalid("public_key", "the CA's own key"));
    }
    let now = u64::try_from(unix_now()).unwrap_or_default();
    let valid_after = now.saturating_sub(BACKDATE_SECS);
    let valid_before = now.saturating_add(checked.ttl);
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    let mut ca = ca_tx(a, &tx)?;
    let stored = Snapshot::begin(a.store())?
        .keys(SSH_CERTS, &mount_key(id, b""), MAX_CERTS)?
        .len();
    if stored >= MAX_CERTS {
        return Err(CryptError::FailedPrecondition(format!(
            "the mount stores {MAX_CERTS} certificates"
        )));
    }
    let serial = ca.next_serial;
    let key_id = r.key_id.clone().unwrap_or_else(|| {
        format!(
            "{}@{}/{}#{serial}",
            a.principal().username,
            a.mount().name,
            profile_name
        )
    });
    let line = cert::sign(
        &ca_private,
        cert::ToSign {
            subject,
            kind: p.cert_type,
            serial,
            key_id: &key_id,
            valid_after,
            valid_before,
            checked: &checked,
        },
    )?;
    ca.next_serial += 1;
    let rec = CertRecord {
        serial,
        key_id: key_id.clone(),
        cert_type: p.cert_type,
        principals: checked.principals.clone(),
        valid_after,
        valid_before,
        profile: profile_name.to_owned(),
        certificate: line.clone(),
        revoked_at: None,
    };
    put_sealed(&tx, a.keys(), id, SSH_CA, &ca_key(a), &ca)?;
    put_sealed(
        &tx,
        a.keys(),
        id,
        SSH_CERTS,
        &mount_key(id, &serial.to_be_bytes()),
        &rec,
    )?;
    audit(
        a,
        &tx,
        "ssh.sign",
        &format!("sign-key/{profile_name}"),
        format!(
            "serial={serial} key_id={key_id} principals={}",
            checked.principals.join(",")
        ),
    )?;
    tx.commit()?;
    Ok(Signed {
        serial,
        key_id,
        principals: checked.principals,
        valid_after,
        valid_before,
        certificate: line,
    })
}

/// Serials of stored certificates after `after`, at most 1000.
pub(crate) fn list_issued(a: &Authorized<'_>, after: Option<u64>) -> Result<Vec<u64>, CryptError> {
    let id = a.mount().id;
    let keys = Snapshot::begin(a.store())?.keys(SSH_CERTS, &mount_key(id, b""), MAX_CERTS)?;
    Ok(keys
        .into_iter()
        .filter_map(|k| k[8..].try_into().ok().map(u64::from_be_bytes))
        .filter(|s| after.is_none_or(|a| *s > a))
        .take(MAX_LIST)
        .collect())
}

pub(crate) fn parse_serial(s: &str) -> Result<u64, CryptError> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| CryptError::invalid("serial", "a positive decimal number"))
}

pub(crate) fn get_issued(a: &Authorized<'_>, serial: &str) -> Result<CertRecord, CryptError> {
    let serial = parse_serial(serial)?;
    let id = a.mount().id;
    Snapshot::begin(a.store())?
        .get::<CertRecord>(
            a.keys(),
            id,
            SSH_CERTS,
            &mount_key(id, &serial.to_be_bytes()),
        )?
        .ok_or_else(|| CryptError::NotFound(format!("no certificate {serial}")))
}

/// `POST issued/tidy`: removes the records of expired certificates (their
/// serials stay in the KRL only while unexpired anyway); returns how many.
pub(crate) fn tidy(a: &Authorized<'_>) -> Result<u64, CryptError> {
    let id = a.mount().id;
    let now = u64::try_from(unix_now()).unwrap_or_default();
    let expired: Vec<Vec<u8>> = Snapshot::begin(a.store())?
        .scan::<CertRecord>(a.keys(), id, SSH_CERTS, &mount_key(id, b""))?
        .into_iter()
        .filter(|(_, rec)| rec.valid_before < now)
        .map(|(key, _)| key)
        .collect();
    let tx = WriteTx::begin(a.store())?;
    let mut n = 0;
    for key in &expired {
        n += u64::from(tx.delete(SSH_CERTS, key)?);
    }
    audit(a, &tx, "ssh.tidy", "tidy", format!("removed={n}"))?;
    tx.commit()?;
    Ok(n)
}

/// `POST krl/revoke`: marks serials and key ids revoked and re-encodes the KRL.
pub(crate) fn revoke(a: &Authorized<'_>, r: &RevokeRequest) -> Result<RevokeAnswer, CryptError> {
    if r.serials.is_empty() && r.key_ids.is_empty() {
        return Err(CryptError::invalid(
            "serials",
            "name serials or key_ids to revoke",
        ));
    }
    if r.serials.len() > MAX_REVOKE || r.key_ids.len() > MAX_REVOKE {
        return Err(CryptError::invalid(
            "serials",
            format!("at most {MAX_REVOKE} of each"),
        ));
    }
    for (i, k) in r.key_ids.iter().enumerate() {
        check_key_id(&format!("key_ids[{i}]"), k)?;
    }
    let id = a.mount().id;
    let now = unix_now();
    let tx = WriteTx::begin(a.store())?;
    let mut ca = ca_tx(a, &tx)?;
    let mut records = Vec::new();
    for s in &r.serials {
        let key = mount_key(id, &s.to_be_bytes());
        let rec = get_sealed::<CertRecord>(&tx, a.keys(), id, SSH_CERTS, &key)?
            .ok_or_else(|| CryptError::NotFound(format!("no certificate {s}")))?;
        records.push((key, rec));
    }
    for (key, mut rec) in records {
        if rec.revoked_at.is_none() {
            rec.revoked_at = Some(now);
            put_sealed(&tx, a.keys(), id, SSH_CERTS, &key, &rec)?;
        }
        if !ca.revoked_serials.iter().any(|x| x.serial == rec.serial) {
            ca.revoked_serials.push(RevokedSerial {
                serial: rec.serial,
                valid_before: rec.valid_before,
            });
        }
    }
    for k in &r.key_ids {
        if !ca.revoked_key_ids.contains(k) {
            ca.revoked_key_ids.push(k.clone());
        }
    }
    if ca.revoked_key_ids.len() > MAX_KEY_IDS {
        return Err(CryptError::FailedPrecondition(format!(
            "at most {MAX_KEY_IDS} revoked key ids per CA"
        )));
    }
    ca.krl_version += 1;
    let row = public_row(a, &mut ca)?;
    put_sealed(&tx, a.keys(), id, SSH_CA, &ca_key(a), &ca)?;
    public::put(&tx, &a.mount().name, id, &row)?;
    audit(
        a,
        &tx,
        "ssh.revoke",
        "krl",
        format!(
            "serials={:?} key_ids={:?} krl_version={}",
            r.serials, r.key_ids, ca.krl_version
        ),
    )?;
    tx.commit()?;
    Ok(RevokeAnswer {
        krl_version: ca.krl_version,
        revoked_serials: ca.revoked_serials.len(),
        revoked_key_ids: ca.revoked_key_ids.len(),
    })
}
