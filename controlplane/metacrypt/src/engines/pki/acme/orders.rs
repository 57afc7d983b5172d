//! Orders, authorizations, challenges, finalize, certificate download and
//! revocation (RFC 8555 §7.4–7.6) for an account already verified.
//!
//! Invariants: an order's identifiers all pass the role at new-order
//! (`rejectedIdentifier` otherwise), and finalize signs only a CSR whose
//! names are exactly the order's identifiers, through the pki engine's
//! `sign-csr` path (role key types, TTL, issuer lifetime); a challenge is
//! validated at most once (pending → valid | invalid), and an invalid one
//! makes its authorization and order invalid.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_kit::clock::unix_now;
use serde::Deserialize;
use serde_json::{Value, json};

use super::flow::{Body, Job, Reply, Step, Urls, key_authorization};
use super::jws::Decoded;
use super::model::{Account, Authz, Challenge, Identifier, Order, kind, new_id, rfc3339, valid_id};
use super::problem::{Kind, Problem};
use super::rows::{audit, begin, commit, get, get_tx, internal, put};
use crate::core::run::Authorized;
use crate::engines::pki::model::IssueRequest;
use crate::engines::pki::{certs, names, ops};
use crate::error::CryptError;

/// Pending orders and authorizations live a day.
const PENDING_SECS: i64 = 86_400;

fn reply(status: u16, location: Option<String>, links: Vec<String>, body: Value) -> Step {
    Step::Done(Reply {
        status,
        location,
        links,
        body: Body::Json(body),
    })
}

fn order_view(urls: &Urls, o: &Order) -> Value {
    let mut v = json!({
        "status": o.status,
        "expires": rfc3339(o.expires),
        "identifiers": o.identifiers,
        "authorizations": o.authzs.iter().map(|z| urls.of(&format!("authz/{z}"))).collect::<Vec<_>>(),
        "finalize": urls.of(&format!("order/{}/finalize", o.id)),
    });
    if o.chain.is_some() {
        v["certificate"] = Value::String(urls.of(&format!("cert/{}", o.id)));
    }
    if let Some(e) = &o.error {
        v["error"] = e.clone();
    }
    v
}

fn authz_view(urls: &Urls, z: &Authz) -> Value {
    let mut v = json!({
        "identifier": z.identifier,
        "status": z.status,
        "expires": rfc3339(z.expires),
        "challenges": z.challenges.iter().enumerate()
            .map(|(i, c)| c.view(&urls.of(&format!("chall/{}/{i}", z.id))))
            .collect::<Vec<_>>(),
    });
    if z.wildcard {
        v["wildcard"] = Value::Bool(true);
    }
    v
}

/// An order of `acct`, or `malformed` 404 as if absent.
fn own_order(a: &Authorized<'_>, acct: &Account, id: &str) -> Result<Order, Problem> {
    valid_id(id)
        .then_some(())
        .and_then(|()| get::<Order>(a, kind::ORDER, id).transpose())
        .transpose()?
        .filter(|o| o.account == acct.id)
        .ok_or_else(|| Problem::malformed("no such order").with_status(404))
}

fn own_authz(a: &Authorized<'_>, acct: &Account, id: &str) -> Result<Authz, Problem> {
    valid_id(id)
        .then_some(())
        .and_then(|()| get::<Authz>(a, kind::AUTHZ, id).transpose())
        .transpose()?
        .filter(|z| z.account == acct.id)
        .ok_or_else(|| Problem::malformed("no such authorization").with_status(404))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
}

fn rejected(e: CryptError) -> Problem {
    Problem::new(Kind::RejectedIdentifier, e.to_string())
}

/// The role's check of every identifier; the challenges each may use.
fn check_identifiers(
    a: &Authorized<'_>,
    role: &str,
    ids: &[Identifier],
) -> Result<Vec<Identifier>, Problem> {
    if ids.is_empty() || ids.len() > super::flow::MAX_IDENTIFIERS {
        return Err(Problem::malformed("1 to 100 identifiers"));
    }
    let r = ops::get_role(a, role).map_err(internal)?;
    let mut out: Vec<Identifier> = Vec::new();
    for id in ids {
        let value = id.value.to_ascii_lowercase();
        match id.kind.as_str() {
            "dns" => {
                names::check_all(&r, "", std::slice::from_ref(&value), &[]).map_err(rejected)?;
            }
            "ip" => {
                names::check_all(&r, "", &[], std::slice::from_ref(&value)).map_err(rejected)?;
            }
            k => {
                return Err(Problem::new(
                    Kind::RejectedIdentifier,
                    format!("identifier type {k:?} is not supported"),
                ));
            }
        }
        let norm = Identifier {
            kind: id.kind.clone(),
            value,
        };
        if !out.contains(&norm) {
            out.push(norm);
        }
    }
    Ok(out)
}

fn challenges_for(id: &Identifier) -> Result<(bool, Vec<Challenge>), Problem> {
    let wildcard = id.value.starts_with("*.");
    let kinds: &[&str] = match (id.kind.as_str(), wildcard) {
        ("dns", true) => &["dns-01"],
        ("dns", false) => &["http-01", "tls-alpn-01", "dns-01"],
        _ => &["http-01", "tls-alpn-01"],
    };
    let mut out = Vec::new();
    for k in kinds {
        out.push(Challenge {
            kind: (*k).to_owned(),
            token: new_id()?,
            status: "pending".to_owned(),
            validated: None,
            error: None,
        });
    }
    Ok((wildcard, out))
}

/// new-order (§7.4).
pub(crate) fn new_order(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let req: NewOrder = serde_json::from_value(jws.payload_json()?)
        .map_err(|e| Problem::malformed(format!("new-order payload: {e}")))?;
    if req.not_before.is_some() || req.not_after.is_some() {
        return Err(Problem::malformed(
            "notBefore/notAfter are not supported: the role's ttl decides",
        ));
    }
    let identifiers = check_identifiers(a, &acct.role, &req.identifiers)?;
    if super::rows::count(a, kind::ORDER, super::flow::MAX_ORDERS)? >= super::flow::MAX_ORDERS {
        return Err(Problem::new(
            Kind::RateLimited,
            "too many orders: tidy expired ones",
        ));
    }
    let now = unix_now();
    let order_id = new_id()?;
    let tx = begin(a)?;
    let mut authzs = Vec::new();
    for ident in &identifiers {
        let (wildcard, challenges) = challenges_for(ident)?;
        let id = new_id()?;
        let mut identifier = ident.clone();
        if wildcard {
            identifier.value = identifier.value.trim_start_matches("*.").to_owned();
        }
        let z = Authz {
            id: id.clone(),
            account: acct.id.clone(),
            order: order_id.clone(),
            identifier,
            status: "pending".to_owned(),
            expires: now + PENDING_SECS,
            wildcard,
            challenges,
        };
        put(a, &tx, kind::AUTHZ, &id, &z)?;
        authzs.push(id);
    }
    let o = Order {
        id: order_id.clone(),
        account: acct.id.clone(),
        role: acct.role.clone(),
        status: "pending".to_owned(),
        identifiers,
        authzs,
        expires: now + PENDING_SECS,
        error: None,
        serial: None,
        chain: None,
    };
    put(a, &tx, kind::ORDER, &order_id, &o)?;
    audit(
        a,
        &tx,
        "acme.order",
        &format!("acme/{}/order/{order_id}", acct.role),
        format!(
            "account={} names={}",
            acct.id,
            o.identifiers
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
    )?;
    commit(tx)?;
    let url = urls.of(&format!("order/{order_id}"));
    Ok(reply(201, Some(url), Vec::new(), order_view(urls, &o)))
}

/// order/{id}: POST-as-GET.
pub(crate) fn order(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    id: &str,
) -> Result<Step, Problem> {
    let o = own_order(a, acct, id)?;
    let url = urls.of(&format!("order/{id}"));
    Ok(reply(200, Some(url), Vec::new(), order_view(urls, &o)))
}

/// authz/{id}: POST-as-GET, or `{"status":"deactivated"}`.
pub(crate) fn authz(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    id: &str,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let mut z = own_authz(a, acct, id)?;
    if !jws.is_post_as_get() {
        let p = jws.payload_json()?;
        if p.get("status").and_then(Value::as_str) != Some("deactivated") {
            return Err(Problem::malformed(
                "only {\"status\":\"deactivated\"} may be posted",
            ));
        }
        z.status = "deactivated".to_owned();
        let tx = begin(a)?;
        put(a, &tx, kind::AUTHZ, id, &z)?;
        audit(
            a,
            &tx,
            "acme.authz.deactivate",
            &format!("acme/{}/authz/{id}", acct.role),
            String::new(),
        )?;
        commit(tx)?;
    }
    Ok(reply(200, None, Vec::new(), authz_view(urls, &z)))
}

/// chall/{authz}/{i}: `{}` starts validation of a pending challenge.
pub(crate) fn challenge(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    authz_id: &str,
    index: &str,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let z = own_authz(a, acct, authz_id)?;
    let i: usize = index
        .parse()
        .ok()
        .filter(|i| *i < z.challenges.len())
        .ok_or_else(|| Problem::malformed("no such challenge").with_status(404))?;
    let c = &z.challenges[i];
    let url = urls.of(&format!("chall/{authz_id}/{i}"));
    let up = vec![format!(
        "<{}>;rel=\"up\"",
        urls.of(&format!("authz/{authz_id}"))
    )];
    let start = !jws.is_post_as_get() && c.status == "pending" && z.status == "pending";
    if !start {
        return Ok(reply(200, None, up, c.view(&url)));
    }
    if z.expires < unix_now() {
        return Err(Problem::malformed("the authorization has expired"));
    }
    Ok(Step::Validate(Job {
        authz: authz_id.to_owned(),
        index: i,
        kind: c.kind.clone(),
        identifier_type: z.identifier.kind.clone(),
        name: z.identifier.value.clone(),
        token: c.token.clone(),
        key_authorization: key_authorization(&c.token, acct)?,
    }))
}

/// Records a validation's outcome and answers the challenge.
pub(crate) fn record(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    job: &Job,
    outcome: Result<(), Problem>,
) -> Result<Step, Problem> {
    let tx = begin(a)?;
    let mut z: Authz = get_tx(a, &tx, kind::AUTHZ, &job.authz)?
        .filter(|z: &Authz| z.account == acct.id)
        .ok_or_else(|| Problem::malformed("no such authorization").with_status(404))?;
    let mut o: Order = get_tx(a, &tx, kind::ORDER, &z.order)?
        .ok_or_else(|| Problem::new(Kind::ServerInternal, "authorization without order"))?;
    let now = unix_now();
    let c = z
        .challenges
        .get_mut(job.index)
        .ok_or_else(|| Problem::malformed("no such challenge"))?;
    if c.status == "pending" && z.status == "pending" {
        match &outcome {
            Ok(()) => {
                c.status = "valid".to_owned();
                c.validated = Some(now);
                z.status = "valid".to_owned();
                z.expires = now + 30 * 86_400;
            }
            Err(p) => {
                c.status = "invalid".to_owned();
                c.error = Some(p.to_value());
                z.status = "invalid".to_owned();
                o.status = "invalid".to_owned();
                o.error = Some(p.to_value());
            }
        }
        put(a, &tx, kind::AUTHZ, &z.id, &z)?;
        if o.status == "pending" {
            let mut all = true;
            for other in &o.authzs {
                let st = if *other == z.id {
                    z.status.clone()
                } else {
                    get_tx::<Authz>(a, &tx, kind::AUTHZ, other)?
                        .map(|x| x.status)
                        .unwrap_or_default()
                };
                all &= st == "valid";
            }
            if all {
                o.status = "ready".to_owned();
            }
        }
        put(a, &tx, kind::ORDER, &o.id, &o)?;
        audit(
            a,
            &tx,
            "acme.challenge",
            &format!("acme/{}/authz/{}", acct.role, z.id),
            format!(
                "{} {} {}",
                job.kind,
                job.name,
                outcome
                    .as_ref()
                    .map_or_else(|p| p.to_string(), |()| "valid".to_owned())
            ),
        )?;
        commit(tx)?;
    }
    let url = urls.of(&format!("chall/{}/{}", z.id, job.index));
    let up = vec![format!(
        "<{}>;rel=\"up\"",
        urls.of(&format!("authz/{}", z.id))
    )];
    Ok(reply(200, None, up, z.challenges[job.index].view(&url)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Finalize {
    csr: String,
}

/// finalize (§7.4): the CSR's names must be the order's identifiers.
pub(crate) fn finalize(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    id: &str,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let mut o = own_order(a, acct, id)?;
    if o.status != "ready" {
        return Err(Problem::new(
            Kind::OrderNotReady,
            format!("the order is {}", o.status),
        ));
    }
    let f: Finalize = serde_json::from_value(jws.payload_json()?)
        .map_err(|e| Problem::malformed(format!("finalize payload: {e}")))?;
    let der = URL_SAFE_NO_PAD
        .decode(&f.csr)
        .map_err(|_| Problem::new(Kind::BadCsr, "csr is not unpadded base64url"))?;
    let csr = crate::engines::pki::csr::parse(&der)
        .map_err(|e| Problem::new(Kind::BadCsr, e.to_string()))?;
    let mut names: BTreeSet<String> = csr.dns.iter().map(|d| d.to_ascii_lowercase()).collect();
    names.extend(csr.ips.iter().map(ToString::to_string));
    if !csr.common_name.is_empty() {
        names.insert(csr.common_name.to_ascii_lowercase());
    }
    let wanted: BTreeSet<String> = o.identifiers.iter().map(|i| i.value.clone()).collect();
    if names != wanted {
        return Err(Problem::new(
            Kind::BadCsr,
            "the CSR's names are not the order's identifiers",
        ));
    }
    let req = IssueRequest {
        csr: Some(ops::pem_block("CERTIFICATE REQUEST", &der)),
        ..IssueRequest::default()
    };
    let issued = certs::sign_csr(a, &acct.role, &req).map_err(|e| match e {
        CryptError::Invalid(i) if i.to_string().contains("key_type") => {
            Problem::new(Kind::BadPublicKey, i.to_string())
        }
        CryptError::Invalid(i) => Problem::new(Kind::BadCsr, i.to_string()),
        other => internal(other),
    })?;
    let tx = begin(a)?;
    o.status = "valid".to_owned();
    o.serial = Some(issued.serial.clone());
    o.chain = Some(format!("{}{}", issued.certificate, issued.ca_chain));
    put(a, &tx, kind::ORDER, id, &o)?;
    audit(
        a,
        &tx,
        "acme.finalize",
        &format!("acme/{}/order/{id}", acct.role),
        format!("serial={} account={}", issued.serial, acct.id),
    )?;
    commit(tx)?;
    let url = urls.of(&format!("order/{id}"));
    Ok(reply(200, Some(url), Vec::new(), order_view(urls, &o)))
}

/// cert/{id}: POST-as-GET, the PEM chain.
pub(crate) fn cert(a: &Authorized<'_>, acct: &Account, id: &str) -> Result<Step, Problem> {
    let o = own_order(a, acct, id)?;
    let chain = o
        .chain
        .ok_or_else(|| Problem::malformed("the order has no certificate").with_status(404))?;
    Ok(Step::Done(Reply {
        status: 200,
        location: None,
        links: Vec::new(),
        body: Body::Pem(chain),
    }))
}
