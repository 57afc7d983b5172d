//! Certificate operations: issue (server-side key), sign-csr, renew,
//! revoke, list, get, tidy.
//!
//! Invariant: every check (role, names, TTL, key type, CSR signature, the
//! issuer's lifetime) happens before the write transaction, so a refusal
//! changes nothing; the generated private key is in the answer only.

use std::net::IpAddr;

use mc_kit::clock::unix_now;
use mc_kit::store::json::WriteTx;
use zeroize::Zeroizing;

use super::model::{
    CertRecord, IssueRequest, Issued, IssuerRef, KeyType, RevokeAnswer, Revoked, Role, Ttl,
};
use super::ops::{audit, get_role, latest};
use super::reason::Reason;
use super::tables::PKI_CERTS;
use super::{MAX_CERTS, MAX_LIST, csr, names, public, x509};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::mount_key;

fn ttl_for(role: &Role, ttl: Option<Ttl>) -> Result<u64, CryptError> {
    let ttl = ttl.unwrap_or(role.ttl).0;
    if ttl == 0 {
        return Err(CryptError::invalid("ttl", "at least 1s"));
    }
    if ttl > role.max_ttl.0 {
        return Err(CryptError::invalid(
            "ttl",
            format!("{ttl}s exceeds the role's max_ttl ({}s)", role.max_ttl.0),
        ));
    }
    Ok(ttl)
}

fn check_key_type(role: &Role, kt: KeyType) -> Result<(), CryptError> {
    if role.key_types.contains(&kt) {
        Ok(())
    } else {
        Err(CryptError::invalid(
            "key_type",
            format!("{} is not allowed by the role", kt.as_str()),
        ))
    }
}

/// What a certificate will say, all checked.
struct Plan {
    role_name: String,
    role: Role,
    common_name: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    ttl: u64,
    key_type: KeyType,
}

/// Signs the plan for `public`, stores it unless `no_store`, answers.
fn finish(
    a: &Authorized<'_>,
    plan: Plan,
    public_key: &impl rcgen::PublicKeyData,
    private_key: Option<Zeroizing<String>>,
    action: &str,
) -> Result<Issued, CryptError> {
    let issuer = latest(a, &plan.role.issuer)?.ok_or_else(|| {
        CryptError::FailedPrecondition(format!(
            "the role's issuer {} does not exist",
            plan.role.issuer
        ))
    })?;
    let now = unix_now();
    let not_after = now.saturating_add(i64::try_from(plan.ttl).map_err(CryptError::internal)?);
    if not_after > issuer.not_after {
        return Err(CryptError::invalid(
            "ttl",
            format!(
                "the certificate would outlive its issuer (not after {})",
                issuer.not_after
            ),
        ));
    }
    let serial = x509::random_serial()?;
    let params = x509::leaf_params(&x509::Leaf {
        common_name: &plan.common_name,
        dns: &plan.dns,
        ips: &plan.ips,
        serial,
        not_before: now - x509::BACKDATE_SECS,
        not_after,
        rsa: plan.key_type.is_rsa(),
        server: plan.role.server,
        client: plan.role.client,
    })?;
    let ca_key = x509::load_key(&issuer.key_pem)?;
    let cert = x509::sign(&params, public_key, &issuer.cert_pem, &ca_key)?;
    let issuer_ref = IssuerRef {
        name: issuer.name.clone(),
        version: issuer.version,
    };
    let chain = public::one(
        a.store(),
        &a.mount().name,
        &issuer.name,
        Some(issuer.version),
    )?
    .row
    .chain_pem;
    let serial_hex = x509::hex(&serial);
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    if !plan.role.no_store {
        let count = Snapshot::begin(a.store())?
            .keys(PKI_CERTS, &mount_key(id, b""), MAX_CERTS)?
            .len();
        if count >= MAX_CERTS {
            return Err(CryptError::FailedPrecondition(
                "the mount stores 100000 certificates: tidy expired ones or use a no_store role"
                    .to_owned(),
            ));
        }
        let mut names: Vec<String> = plan.dns.clone();
        names.extend(plan.ips.iter().map(ToString::to_string));
        let rec = CertRecord {
            serial: serial_hex.clone(),
            issuer: issuer_ref.clone(),
            role: plan.role_name.clone(),
            certificate: cert.clone(),
            common_name: plan.common_name.clone(),
            names,
            not_before: now - x509::BACKDATE_SECS,
            not_after,
            revoked_at: None,
            revocation_reason: None,
        };
        put_sealed(&tx, a.keys(), id, PKI_CERTS, &mount_key(id, &serial), &rec)?;
    }
    audit(
        a,
        &tx,
        action,
        &format!("certs/{serial_hex}"),
        format!(
            "role={} issuer={}@{}",
            plan.role_name, issuer.name, issuer.version
        ),
    )?;
    tx.commit()?;
    Ok(Issued {
        serial: serial_hex,
        certificate: cert,
        ca_chain: chain,
        issuer: issuer_ref,
        not_after,
        private_key: private_key.map(|k| k.to_string()),
        key_type: plan.key_type,
        stored: !plan.role.no_store,
    })
}

pub(crate) fn issue(
    a: &Authorized<'_>,
    role_name: &str,
    req: &IssueRequest,
) -> Result<Issued, CryptError> {
    let role = get_role(a, role_name)?;
    if req.csr.is_some() {
        return Err(CryptError::invalid(
            "csr",
            "issue generates the key; use sign-csr",
        ));
    }
    let (dns, ips) = names::check_all(&role, &req.common_name, &req.alt_names, &req.ip_sans)?;
    let ttl = ttl_for(&role, req.ttl)?;
    let kt = req.key_type.or(role.key_type).unwrap_or(KeyType::EcP256);
    check_key_type(&role, kt)?;
    let key = x509::generate(kt)?;
    let pem = x509::key_pem(&key);
    let plan = Plan {
        role_name: role_name.to_owned(),
        common_name: req.common_name.to_ascii_lowercase(),
        role,
        dns,
        ips,
        ttl,
        key_type: kt,
    };
    finish(a, plan, &key, Some(pem), "pki.issue")
}

pub(crate) fn sign_csr(
    a: &Authorized<'_>,
    role_name: &str,
    req: &IssueRequest,
) -> Result<Issued, CryptError> {
    let role = get_role(a, role_name)?;
    let text = req
        .csr
        .as_deref()
        .ok_or_else(|| CryptError::invalid("csr", "required (PEM)"))?;
    if req.key_type.is_some() {
        return Err(CryptError::invalid("key_type", "the CSR's key decides"));
    }
    let parsed = csr::parse(text.as_bytes())?;
    check_key_type(&role, parsed.key_type)?;
    let from_request =
        !req.common_name.is_empty() || !req.alt_names.is_empty() || !req.ip_sans.is_empty();
    let (cn, alt, ip_sans) = if from_request {
        (
            req.common_name.clone(),
            req.alt_names.clone(),
            req.ip_sans.clone(),
        )
    } else {
        (
            parsed.common_name.clone(),
            parsed.dns.clone(),
            parsed.ips.iter().map(ToString::to_string).collect(),
        )
    };
    let (dns, ips) = names::check_all(&role, &cn, &alt, &ip_sans)?;
    let ttl = ttl_for(&role, req.ttl)?;
    let spki = rcgen::SubjectPublicKeyInfo::from_der(&parsed.spki_der)
        .map_err(|e| CryptError::invalid("csr", format!("public key: {e}")))?;
    let plan = Plan {
        role_name: role_name.to_owned(),
        common_name: cn.to_ascii_lowercase(),
        role,
        dns,
        ips,
        ttl,
        key_type: parsed.key_type,
    };
    finish(a, plan, &spki, None, "pki.sign")
}

fn get_rec(a: &Authorized<'_>, serial: &str) -> Result<([u8; 16], CertRecord), CryptError> {
    let s = x509::parse_serial(serial)?;
    let id = a.mount().id;
    let rec = Snapshot::begin(a.store())?
        .get::<CertRecord>(a.keys(), id, PKI_CERTS, &mount_key(id, &s))?
        .ok_or_else(|| CryptError::NotFound(format!("no stored certificate {serial}")))?;
    Ok((s, rec))
}

pub(crate) fn get_cert(a: &Authorized<'_>, serial: &str) -> Result<CertRecord, CryptError> {
    Ok(get_rec(a, serial)?.1)
}

pub(crate) fn renew(a: &Authorized<'_>, serial: &str) -> Result<Issued, CryptError> {
    let (_, rec) = get_rec(a, serial)?;
    if rec.revoked_at.is_some() {
        return Err(CryptError::FailedPrecondition(format!(
            "certificate {serial} is revoked"
        )));
    }
    let role = get_role(a, &rec.role)?;
    let info = x509::cert_info(&rec.certificate, "certificate")?;
    let kt = info
        .key_type
        .ok_or_else(|| CryptError::internal("stored certificate with an unknown key type"))?;
    check_key_type(&role, kt)?;
    let (dns, ips) = names::check_all(&role, &rec.common_name, &rec.names, &[])?;
    let spki = rcgen::SubjectPublicKeyInfo::from_der(&info.spki_der)
        .map_err(|e| CryptError::internal(format!("stored public key: {e}")))?;
    let plan = Plan {
        role_name: rec.role.clone(),
        common_name: rec.common_name.clone(),
        ttl: role.ttl.0,
        role,
        dns,
        ips,
        key_type: kt,
    };
    finish(a, plan, &spki, None, "pki.renew")
}

pub(crate) fn revoke(
    a: &Authorized<'_>,
    serial: &str,
    reason: Reason,
) -> Result<RevokeAnswer, CryptError> {
    let s = x509::parse_serial(serial)?;
    let id = a.mount().id;
    let key = mount_key(id, &s);
    let tx = WriteTx::begin(a.store())?;
    let mut rec: CertRecord = get_sealed(&tx, a.keys(), id, PKI_CERTS, &key)?.ok_or_else(|| {
        CryptError::NotFound(format!(
            "no stored certificate {serial} (no_store certificates cannot be revoked)"
        ))
    })?;
    if let Some(at) = rec.revoked_at {
        let crl = public::one(
            a.store(),
            &a.mount().name,
            &rec.issuer.name,
            Some(rec.issuer.version),
        )?;
        return Ok(RevokeAnswer {
            serial: rec.serial,
            revoked_at: at,
            reason: rec.revocation_reason.unwrap_or_default(),
            crl_number: crl.row.crl_number,
        });
    }
    let now = unix_now();
    rec.revoked_at = Some(now);
    rec.revocation_reason = Some(reason);
    let crl_number = super::ops::revoke_in(
        a,
        &tx,
        &rec.issuer,
        Revoked {
            serial: rec.serial.clone(),
            revoked_at: now,
            not_after: rec.not_after,
            reason,
        },
    )?;
    put_sealed(&tx, a.keys(), id, PKI_CERTS, &key, &rec)?;
    audit(
        a,
        &tx,
        "pki.revoke",
        &format!("certs/{}", rec.serial),
        format!("crl_number={crl_number} reason={}", reason.name()),
    )?;
    tx.commit()?;
    Ok(RevokeAnswer {
        serial: rec.serial,
        revoked_at: now,
        reason,
        crl_number,
    })
}

/// Up to 1000 serials after `after` (hex), in serial order.
pub(crate) fn list_certs(
    a: &Authorized<'_>,
    after: Option<&str>,
) -> Result<Vec<String>, CryptError> {
    let id = a.mount().id;
    let start = after.map(x509::parse_serial).transpose()?;
    let keys = Snapshot::begin(a.store())?.keys(PKI_CERTS, &mount_key(id, b""), MAX_CERTS)?;
    Ok(keys
        .into_iter()
        .map(|k| k[8..].to_vec())
        .filter(|s| start.is_none_or(|st| s.as_slice() > st.as_slice()))
        .take(MAX_LIST)
        .map(|s| x509::hex(&s))
        .collect())
}

/// Removes stored certificates that have expired; returns how many.
pub(crate) fn tidy(a: &Authorized<'_>) -> Result<u64, CryptError> {
    let id = a.mount().id;
    let now = unix_now();
    let rows = Snapshot::begin(a.store())?.scan::<CertRecord>(
        a.keys(),
        id,
        PKI_CERTS,
        &mount_key(id, b""),
    )?;
    let tx = WriteTx::begin(a.store())?;
    let mut n = 0;
    for (key, rec) in rows {
        if rec.not_after < now && tx.delete(PKI_CERTS, &key)? {
            n += 1;
        }
    }
    audit(a, &tx, "pki.tidy", "tidy", format!("removed={n}"))?;
    tx.commit()?;
    Ok(n)
}
