//! Issuer and role operations: root generate/import, intermediates,
//! rotation, CRL re-signing, roles. Certificates are in `certs.rs`.
//!
//! Invariant: key generation and signing happen before the write
//! transaction; the transaction re-checks what it depends on (the issuer
//! version it extends is still the latest) and writes the sealed issuer
//! row, its public row and the audit row together.

use base64::Engine as _;
use mc_kit::clock::unix_now;
use mc_kit::store::json::WriteTx;

use super::model::{
    CaRequest, ImportRequest, IssuerInfo, IssuerRef, IssuerVersion, KeyType, PublicIssuer, ROOT,
    Revoked, Role,
};
use super::tables::{PKI_ISSUERS, PKI_ROLES};
use super::{MAX_ISSUER_VERSIONS, MAX_ISSUERS, MAX_LIST, MAX_ROLES, MAX_TTL_SECS, PkiConfig};
use super::{public, x509};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::mount_key;

/// Issuer and role names: `[a-z][a-z0-9_-]{0,62}`.
pub(crate) fn check_name(name: &str) -> Result<(), CryptError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CryptError::invalid("name", "[a-z][a-z0-9_-]{0,62}"))
    }
}

pub(crate) fn audit(
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

/// The latest version of issuer `name` (read in a write transaction).
pub(crate) fn latest_tx(
    a: &Authorized<'_>,
    tx: &WriteTx,
    name: &str,
) -> Result<Option<IssuerVersion>, CryptError> {
    let id = a.mount().id;
    let mut found = None;
    for v in 1..=MAX_ISSUER_VERSIONS {
        match get_sealed::<IssuerVersion>(
            tx,
            a.keys(),
            id,
            PKI_ISSUERS,
            &public::version_key(id, name, v),
        )? {
            Some(iv) => found = Some(iv),
            None => break,
        }
    }
    Ok(found)
}

/// Every version of every issuer, sealed rows opened, by name then version.
pub(crate) fn all_versions(a: &Authorized<'_>) -> Result<Vec<IssuerVersion>, CryptError> {
    let id = a.mount().id;
    let rx = Snapshot::begin(a.store())?;
    Ok(rx
        .scan::<IssuerVersion>(a.keys(), id, PKI_ISSUERS, &mount_key(id, b""))?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// The latest version of issuer `name`.
pub(crate) fn latest(a: &Authorized<'_>, name: &str) -> Result<Option<IssuerVersion>, CryptError> {
    Ok(all_versions(a)?.into_iter().rfind(|v| v.name == name))
}

fn no_root() -> CryptError {
    CryptError::FailedPrecondition(
        "the mount has no root yet: root/generate or root/import first".to_owned(),
    )
}

/// Signs a CRL of `iv` (expired entries dropped, number + 1) and returns its public row.
pub(crate) fn resign(
    a: &Authorized<'_>,
    iv: &mut IssuerVersion,
    chain_pem: String,
) -> Result<PublicIssuer, CryptError> {
    let now = unix_now();
    iv.revoked.retain(|r| r.not_after > now);
    iv.crl_number += 1;
    let key = x509::load_key(&iv.key_pem)?;
    let ttl = PkiConfig::of(&a.mount().config).crl_ttl.0;
    let der = x509::crl(&iv.cert_pem, &key, iv.crl_number, now, ttl, &iv.revoked)?;
    Ok(PublicIssuer {
        cert_pem: iv.cert_pem.clone(),
        chain_pem,
        crl_der: base64::engine::general_purpose::STANDARD.encode(der),
        crl_number: iv.crl_number,
        not_after: iv.not_after,
        crl_next_update: now.saturating_add(i64::try_from(ttl).map_err(CryptError::internal)?),
    })
}

/// The chain of `parent` as published (its cert then its parents').
fn chain_of(a: &Authorized<'_>, parent: &IssuerRef) -> Result<String, CryptError> {
    Ok(public::one(
        a.store(),
        &a.mount().name,
        &parent.name,
        Some(parent.version),
    )?
    .row
    .chain_pem)
}

/// Stores a new issuer version (sealed + public + name index + audit) if
/// `expect_prev` is still the latest version.
fn store_version(
    a: &Authorized<'_>,
    mut iv: IssuerVersion,
    action: &str,
) -> Result<IssuerInfo, CryptError> {
    let id = a.mount().id;
    let chain = match &iv.parent {
        Some(p) => format!("{}{}", iv.cert_pem, chain_of(a, p)?),
        None => iv.cert_pem.clone(),
    };
    let row = resign(a, &mut iv, chain)?;
    let tx = WriteTx::begin(a.store())?;
    let prev = latest_tx(a, &tx, &iv.name)?.map_or(0, |p| p.version);
    if prev + 1 != iv.version {
        return Err(CryptError::AlreadyExists(format!(
            "issuer {} changed meanwhile (now at version {prev})",
            iv.name
        )));
    }
    if iv.version == 1 {
        let rx = Snapshot::begin(a.store())?;
        let names: std::collections::BTreeSet<String> = rx
            .scan::<IssuerVersion>(a.keys(), id, PKI_ISSUERS, &mount_key(id, b""))?
            .into_iter()
            .map(|(_, v)| v.name)
            .collect();
        if names.len() >= MAX_ISSUERS {
            return Err(CryptError::invalid("name", "at most 32 issuers per mount"));
        }
    }
    let key = public::version_key(id, &iv.name, iv.version);
    put_sealed(&tx, a.keys(), id, PKI_ISSUERS, &key, &iv)?;
    public::put_issuer(&tx, id, &iv.name, iv.version, &row)?;
    public::put_name(&tx, &a.mount().name, id)?;
    audit(
        a,
        &tx,
        action,
        &format!("issuers/{}", iv.name),
        format!("version={}", iv.version),
    )?;
    tx.commit()?;
    Ok(info(&iv, row.chain_pem, iv.version))
}

pub(crate) fn info(iv: &IssuerVersion, chain: String, versions: u32) -> IssuerInfo {
    IssuerInfo {
        name: iv.name.clone(),
        version: iv.version,
        versions,
        key_type: iv.key_type,
        certificate: iv.cert_pem.clone(),
        chain,
        not_after: iv.not_after,
        parent: iv.parent.clone(),
        crl_number: iv.crl_number,
        revoked: iv.revoked.len(),
    }
}

fn check_ca(req: &CaRequest) -> Result<(), CryptError> {
    if req.common_name.trim().is_empty()
        || req.common_name.chars().count() > 64
        || req.common_name.chars().any(char::is_control)
    {
        return Err(CryptError::invalid("common_name", "1 to 64 characters"));
    }
    if req.ttl.0 < 3600 || req.ttl.0 > MAX_TTL_SECS {
        return Err(CryptError::invalid("ttl", "1h to 20 years"));
    }
    Ok(())
}

fn new_version(
    name: &str,
    version: u32,
    kt: KeyType,
    key_pem: &str,
    cert_pem: String,
    not_after: i64,
    parent: Option<IssuerRef>,
) -> IssuerVersion {
    IssuerVersion {
        name: name.to_owned(),
        version,
        key_type: kt,
        key_pem: key_pem.to_owned(),
        cert_pem,
        not_after,
        parent,
        crl_number: 0,
        revoked: Vec::new(),
        created_at: unix_now(),
    }
}

/// A self-signed root, version `version`.
fn make_root(req: &CaRequest, version: u32) -> Result<IssuerVersion, CryptError> {
    let now = unix_now();
    let not_after = now.saturating_add(i64::try_from(req.ttl.0).map_err(CryptError::internal)?);
    let key = x509::generate(req.key_type)?;
    let params = x509::ca_params(
        &req.common_name,
        &x509::random_serial()?,
        now - x509::BACKDATE_SECS,
        not_after,
        false,
    )?;
    let cert = x509::self_sign(&params, &key)?;
    Ok(new_version(
        ROOT,
        version,
        req.key_type,
        &x509::key_pem(&key),
        cert,
        not_after,
        None,
    ))
}

/// An intermediate signed by the current root.
fn make_intermediate(
    a: &Authorized<'_>,
    name: &str,
    req: &CaRequest,
    version: u32,
) -> Result<IssuerVersion, CryptError> {
    let root = latest(a, ROOT)?.ok_or_else(no_root)?;
    let now = unix_now();
    let not_after = now.saturating_add(i64::try_from(req.ttl.0).map_err(CryptError::internal)?);
    if not_after > root.not_after {
        return Err(CryptError::invalid(
            "ttl",
            "the intermediate would outlive the root",
        ));
    }
    let key = x509::generate(req.key_type)?;
    let params = x509::ca_params(
        &req.common_name,
        &x509::random_serial()?,
        now - x509::BACKDATE_SECS,
        not_after,
        true,
    )?;
    let root_key = x509::load_key(&root.key_pem)?;
    let cert = x509::sign(&params, &key, &root.cert_pem, &root_key)?;
    let parent = IssuerRef {
        name: ROOT.to_owned(),
        version: root.version,
    };
    Ok(new_version(
        name,
        version,
        req.key_type,
        &x509::key_pem(&key),
        cert,
        not_after,
        Some(parent),
    ))
}

pub(crate) fn root_generate(a: &Authorized<'_>, req: &CaRequest) -> Result<IssuerInfo, CryptError> {
    check_ca(req)?;
    if latest(a, ROOT)?.is_some() {
        return Err(CryptError::AlreadyExists(
            "the mount has a root; rotate it with issuers/root/rotate".to_owned(),
        ));
    }
    store_version(a, make_root(req, 1)?, "pki.root.generate")
}

pub(crate) fn root_import(
    a: &Authorized<'_>,
    req: &ImportRequest,
) -> Result<IssuerInfo, CryptError> {
    if req.certificate.len() > 64 * 1024 || req.private_key.len() > 64 * 1024 {
        return Err(CryptError::invalid("certificate", "at most 64 KiB each"));
    }
    let info = x509::cert_info(&req.certificate, "certificate")?;
    if !info.is_ca {
        return Err(CryptError::invalid("certificate", "not a CA certificate"));
    }
    if info.not_after <= unix_now() {
        return Err(CryptError::invalid("certificate", "expired"));
    }
    let kt = info.key_type.ok_or_else(|| {
        CryptError::invalid(
            "certificate",
            format!("key type not one of {}", KeyType::ALL),
        )
    })?;
    let key = x509::load_key(&req.private_key)?;
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    if spki != info.spki_der {
        return Err(CryptError::invalid(
            "private_key",
            "does not match the certificate",
        ));
    }
    // The certificate as one canonical PEM block (whatever else the input held).
    let der = x509::pem_der(&req.certificate, "certificate", "CERTIFICATE")?;
    let cert_pem = pem_of(&der);
    if latest(a, ROOT)?.is_some() {
        return Err(CryptError::AlreadyExists(
            "the mount has a root; rotate it with issuers/root/rotate".to_owned(),
        ));
    }
    let iv = new_version(
        ROOT,
        1,
        kt,
        &x509::key_pem(&key),
        cert_pem,
        info.not_after,
        None,
    );
    store_version(a, iv, "pki.root.import")
}

/// DER certificate → PEM.
pub(crate) fn pem_of(der: &[u8]) -> String {
    pem_block("CERTIFICATE", der)
}

/// DER → a PEM block labelled `label`.
pub(crate) fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

pub(crate) fn create_issuer(
    a: &Authorized<'_>,
    name: &str,
    req: &CaRequest,
) -> Result<IssuerInfo, CryptError> {
    check_name(name)?;
    if name == ROOT {
        return Err(CryptError::invalid(
            "name",
            "root is made by root/generate or root/import",
        ));
    }
    check_ca(req)?;
    if latest(a, name)?.is_some() {
        return Err(CryptError::AlreadyExists(format!(
            "issuer {name} exists; rotate it"
        )));
    }
    let iv = make_intermediate(a, name, req, 1)?;
    store_version(a, iv, "pki.issuer.create")
}

pub(crate) fn rotate_issuer(a: &Authorized<'_>, name: &str) -> Result<IssuerInfo, CryptError> {
    check_name(name)?;
    let cur =
        latest(a, name)?.ok_or_else(|| CryptError::NotFound(format!("no issuer named {name}")))?;
    if cur.version >= MAX_ISSUER_VERSIONS {
        return Err(CryptError::invalid(
            "name",
            "at most 16 versions per issuer",
        ));
    }
    let cert = x509::cert_info(&cur.cert_pem, "certificate")?;
    let created = x509_parser_cn(&cur.cert_pem).unwrap_or_else(|| name.to_owned());
    let lifetime = u64::try_from(cur.not_after - cur.created_at)
        .unwrap_or(0)
        .clamp(3600, MAX_TTL_SECS);
    let req = CaRequest {
        common_name: created,
        key_type: cert.key_type.unwrap_or(cur.key_type),
        ttl: super::model::Ttl(lifetime),
    };
    let iv = if name == ROOT {
        make_root(&req, cur.version + 1)?
    } else {
        make_intermediate(a, name, &req, cur.version + 1)?
    };
    store_version(a, iv, "pki.issuer.rotate")
}

/// The subject CN of a PEM certificate.
fn x509_parser_cn(pem: &str) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let der = x509::pem_der(pem, "certificate", "CERTIFICATE").ok()?;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

pub(crate) fn get_issuer(a: &Authorized<'_>, name: &str) -> Result<IssuerInfo, CryptError> {
    let versions: Vec<IssuerVersion> = all_versions(a)?
        .into_iter()
        .filter(|v| v.name == name)
        .collect();
    let cur = versions
        .last()
        .ok_or_else(|| CryptError::NotFound(format!("no issuer named {name}")))?;
    let chain = public::one(a.store(), &a.mount().name, name, Some(cur.version))?
        .row
        .chain_pem;
    Ok(info(cur, chain, versions.len() as u32))
}

pub(crate) fn list_issuers(a: &Authorized<'_>) -> Result<Vec<String>, CryptError> {
    let mut names: Vec<String> = all_versions(a)?.into_iter().map(|v| v.name).collect();
    names.dedup();
    Ok(names)
}

/// Re-signs every issuer version's CRL (expired entries drop out).
pub(crate) fn rotate_crls(a: &Authorized<'_>) -> Result<usize, CryptError> {
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    let rx = Snapshot::begin(a.store())?;
    let rows = rx.scan::<IssuerVersion>(a.keys(), id, PKI_ISSUERS, &mount_key(id, b""))?;
    let n = rows.len();
    for (key, mut iv) in rows {
        let chain = public::one(a.store(), &a.mount().name, &iv.name, Some(iv.version))?
            .row
            .chain_pem;
        let row = resign(a, &mut iv, chain)?;
        put_sealed(&tx, a.keys(), id, PKI_ISSUERS, &key, &iv)?;
        public::put_issuer(&tx, id, &iv.name, iv.version, &row)?;
    }
    audit(a, &tx, "pki.crl.rotate", "crl", format!("issuers={n}"))?;
    tx.commit()?;
    Ok(n)
}

/// Re-signs the CRL of every unexpired issuer version whose CRL reaches
/// its `next_update` − the mount's refresh margin by `now`; how many.
pub(crate) fn refresh_due_crls(a: &Authorized<'_>, now: i64) -> Result<usize, CryptError> {
    let id = a.mount().id;
    let margin = i64::try_from(PkiConfig::of(&a.mount().config).refresh_margin())
        .map_err(CryptError::internal)?;
    let due: Vec<_> = public::all(a.store(), &a.mount().name)?
        .into_iter()
        .filter(|l| l.row.not_after > now && l.row.crl_next_update.saturating_sub(margin) <= now)
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let tx = WriteTx::begin(a.store())?;
    for l in &due {
        let key = public::version_key(id, &l.name, l.version);
        let Some(mut iv) = get_sealed::<IssuerVersion>(&tx, a.keys(), id, PKI_ISSUERS, &key)?
        else {
            continue;
        };
        let row = resign(a, &mut iv, l.row.chain_pem.clone())?;
        put_sealed(&tx, a.keys(), id, PKI_ISSUERS, &key, &iv)?;
        public::put_issuer(&tx, id, &iv.name, iv.version, &row)?;
    }
    audit(
        a,
        &tx,
        "pki.crl.refresh",
        "crl",
        format!("issuers={}", due.len()),
    )?;
    tx.commit()?;
    Ok(due.len())
}

/// Adds `r` to its issuer version's CRL and re-signs it, inside `tx`.
pub(crate) fn revoke_in(
    a: &Authorized<'_>,
    tx: &WriteTx,
    issuer: &IssuerRef,
    r: Revoked,
) -> Result<u64, CryptError> {
    let id = a.mount().id;
    let key = public::version_key(id, &issuer.name, issuer.version);
    let mut iv: IssuerVersion = get_sealed(tx, a.keys(), id, PKI_ISSUERS, &key)?
        .ok_or_else(|| CryptError::internal("a certificate names a missing issuer"))?;
    let chain = public::one(a.store(), &a.mount().name, &iv.name, Some(iv.version))?
        .row
        .chain_pem;
    if !iv.revoked.iter().any(|x| x.serial == r.serial) {
        iv.revoked.push(r);
    }
    let row = resign(a, &mut iv, chain)?;
    put_sealed(tx, a.keys(), id, PKI_ISSUERS, &key, &iv)?;
    public::put_issuer(tx, id, &iv.name, iv.version, &row)?;
    Ok(iv.crl_number)
}

// Roles.

fn role_key(mount: u64, name: &str) -> Vec<u8> {
    mount_key(mount, name.as_bytes())
}

pub(crate) fn get_role(a: &Authorized<'_>, name: &str) -> Result<Role, CryptError> {
    check_name(name)?;
    let id = a.mount().id;
    Snapshot::begin(a.store())?
        .get::<Role>(a.keys(), id, PKI_ROLES, &role_key(id, name))?
        .ok_or_else(|| CryptError::NotFound(format!("no role named {name}")))
}

pub(crate) fn put_role(a: &Authorized<'_>, name: &str, role: Role) -> Result<Role, CryptError> {
    check_name(name)?;
    let role = role.check()?;
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    let key = role_key(id, name);
    if get_sealed::<Role>(&tx, a.keys(), id, PKI_ROLES, &key)?.is_none() {
        let count = Snapshot::begin(a.store())?
            .keys(PKI_ROLES, &mount_key(id, b""), MAX_ROLES)?
            .len();
        if count >= MAX_ROLES {
            return Err(CryptError::invalid("name", "at most 256 roles per mount"));
        }
    } else {
        a.require(crate::policy::Capability::Update)?;
    }
    put_sealed(&tx, a.keys(), id, PKI_ROLES, &key, &role)?;
    audit(
        a,
        &tx,
        "pki.role.write",
        &format!("roles/{name}"),
        String::new(),
    )?;
    tx.commit()?;
    Ok(role)
}

pub(crate) fn delete_role(a: &Authorized<'_>, name: &str) -> Result<(), CryptError> {
    check_name(name)?;
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    if !tx.delete(PKI_ROLES, &role_key(id, name))? {
        return Err(CryptError::NotFound(format!("no role named {name}")));
    }
    audit(
        a,
        &tx,
        "pki.role.delete",
        &format!("roles/{name}"),
        String::new(),
    )?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn list_roles(a: &Authorized<'_>) -> Result<Vec<String>, CryptError> {
    let id = a.mount().id;
    Ok(Snapshot::begin(a.store())?
        .keys(PKI_ROLES, &mount_key(id, b""), MAX_LIST)?
        .into_iter()
        .map(|k| String::from_utf8_lossy(&k[8..]).into_owned())
        .collect())
}
