//! The ACME request flow after the JWS is decoded and its nonce and `url`
//! checked: key resolution and signature check, then new-account (with
//! EAB), account, new-order, order, authz, challenge, finalize, cert and
//! revoke-cert (RFC 8555 §7.3–7.6).
//!
//! Invariants: every request is signed by the account's key (`kid`), or by
//! the key it carries (`jwk`) only for new-account; a row of another
//! account or role is answered as if absent; a refusal is a problem
//! document and changes nothing; every change writes its audit row in its
//! transaction, naming the bound MCIAS account as the actor.

use mc_kit::clock::unix_now;
use serde::Deserialize;
use serde_json::{Value, json};

use super::jws::{Decoded, KeyRef, Protected, PublicJwk};
use super::model::{Account, EabKey, kind, new_id, valid_id};
use super::problem::{Kind, Problem};
use super::rows::{self, audit, begin, commit, get, get_tx, put};
use crate::core::run::Authorized;

/// Accounts per mount, pending+valid orders per mount, identifiers per order.
pub(crate) const MAX_ACCOUNTS: usize = 10_000;
pub(crate) const MAX_ORDERS: usize = 10_000;
pub(crate) const MAX_IDENTIFIERS: usize = 100;
const MAX_CONTACTS: usize = 4;

/// What one request answers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    /// `Link` header values (`<url>;rel="up"`).
    pub links: Vec<String>,
    pub body: Body,
}

#[derive(Debug)]
pub enum Body {
    Json(Value),
    /// `application/pem-certificate-chain`.
    Pem(String),
}

/// A challenge the caller must check before [`record`] (validation needs
/// I/O, which runs outside the store's transactions).
#[derive(Debug, Clone)]
pub struct Job {
    pub authz: String,
    pub index: usize,
    pub kind: String,
    pub identifier_type: String,
    pub name: String,
    pub token: String,
    pub key_authorization: String,
}

/// The outcome of dispatching a request.
#[derive(Debug)]
pub enum Step {
    Done(Reply),
    Validate(Job),
}

/// The directory's URLs for one mount and role.
#[derive(Debug, Clone)]
pub struct Urls {
    /// `https://host/v1/acme/{mount}/{role}`.
    pub base: String,
}

impl Urls {
    pub fn of(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn directory(&self) -> Value {
        json!({
            "newNonce": self.of("new-nonce"),
            "newAccount": self.of("new-account"),
            "newOrder": self.of("new-order"),
            "revokeCert": self.of("revoke-cert"),
            "keyChange": self.of("key-change"),
            "meta": { "externalAccountRequired": true },
        })
    }
}

fn json_reply(status: u16, location: Option<String>, body: Value) -> Step {
    Step::Done(Reply {
        status,
        location,
        links: Vec::new(),
        body: Body::Json(body),
    })
}

/// The account a `kid` names, checked and with the request verified.
pub(crate) fn account_of(
    a: &Authorized<'_>,
    urls: &Urls,
    role: &str,
    h: &Protected,
    jws: &Decoded,
) -> Result<Account, Problem> {
    let KeyRef::Kid(kid) = &h.key else {
        return Err(Problem::malformed(
            "this request must name its account (kid)",
        ));
    };
    let id = kid
        .strip_prefix(&urls.of("account/"))
        .filter(|id| valid_id(id))
        .ok_or_else(|| Problem::new(Kind::AccountDoesNotExist, "kid is not an account URL"))?;
    let acct: Account = get(a, kind::ACCOUNT, id)?
        .filter(|acc: &Account| acc.role == role)
        .ok_or_else(|| Problem::new(Kind::AccountDoesNotExist, "no such account"))?;
    let key = PublicJwk::from_value(&acct.jwk)?;
    jws.verify(h.alg, &key)?;
    if acct.status != "valid" {
        return Err(Problem::unauthorized("the account is deactivated"));
    }
    Ok(acct)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)] // accepted; there are no terms to agree to
    terms_of_service_agreed: bool,
}

fn check_contacts(c: &[String]) -> Result<(), Problem> {
    if c.len() > MAX_CONTACTS {
        return Err(Problem::malformed("at most 4 contacts"));
    }
    for x in c {
        let ok = x.strip_prefix("mailto:").is_some_and(|m| {
            m.len() <= 254 && m.contains('@') && m.bytes().all(|b| b.is_ascii_graphic())
        });
        if !ok {
            return Err(Problem::new(
                Kind::Malformed,
                format!("contact {x:?} is not a mailto: address"),
            ));
        }
    }
    Ok(())
}

/// new-account (RFC 8555 §7.3): the key in `jwk`, EAB required.
pub(crate) fn new_account(
    a: &Authorized<'_>,
    urls: &Urls,
    role: &str,
    h: &Protected,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let KeyRef::Jwk(key) = &h.key else {
        return Err(Problem::malformed(
            "new-account carries its key (jwk), not a kid",
        ));
    };
    jws.verify(h.alg, key)?;
    let req: NewAccount = serde_json::from_value(jws.payload_json()?)
        .map_err(|e| Problem::malformed(format!("new-account payload: {e}")))?;
    let thumb = key.thumbprint();
    if let Some(id) = get::<String>(a, kind::KEY, &thumb)?
        && let Some(acct) = get::<Account>(a, kind::ACCOUNT, &id)?.filter(|x| x.role == role)
    {
        let url = urls.of(&format!("account/{id}"));
        return Ok(json_reply(
            200,
            Some(url),
            acct.view(&urls.of(&format!("account/{id}/orders"))),
        ));
    }
    if req.only_return_existing {
        return Err(Problem::new(
            Kind::AccountDoesNotExist,
            "no account has this key",
        ));
    }
    check_contacts(&req.contact)?;
    let binding = req.external_account_binding.as_ref().ok_or_else(|| {
        Problem::new(
            Kind::ExternalAccountRequired,
            "an external account binding is required (POST /v1/crypt/{mount}/acme/{role}/eab)",
        )
    })?;
    let b = super::eab::decode(binding, &h.url, key)?;
    if count_rows(a, kind::ACCOUNT, MAX_ACCOUNTS)? {
        return Err(Problem::new(
            Kind::RateLimited,
            "the mount holds 10000 ACME accounts",
        ));
    }
    let tx = begin(a)?;
    let now = unix_now();
    let mut eab: EabKey = get_tx(a, &tx, kind::EAB, &b.kid)?
        .filter(|e: &EabKey| e.role == role && e.expires > now && e.account.is_none())
        .ok_or_else(|| Problem::unauthorized("unknown, expired or used EAB key id"))?;
    let hmac = super::eab::key_bytes(&eab.hmac)?;
    b.verify(&hmac)?;
    if get_tx::<String>(a, &tx, kind::KEY, &thumb)?.is_some() {
        return Err(Problem::unauthorized(
            "the key is already bound to an account",
        ));
    }
    let id = new_id()?;
    let acct = Account {
        id: id.clone(),
        role: role.to_owned(),
        jwk: serde_json::from_str(&key.canonical_json())
            .map_err(|_| Problem::new(Kind::ServerInternal, "jwk"))?,
        thumbprint: thumb.clone(),
        status: "valid".to_owned(),
        contact: req.contact,
        eab: b.kid.clone(),
        mcias_subject: eab.mcias_subject.clone(),
        mcias_name: eab.mcias_name.clone(),
        created: now,
    };
    eab.account = Some(id.clone());
    put(a, &tx, kind::ACCOUNT, &id, &acct)?;
    put(a, &tx, kind::KEY, &thumb, &id)?;
    put(a, &tx, kind::EAB, &b.kid, &eab)?;
    audit(
        a,
        &tx,
        "acme.account",
        &format!("acme/{role}/account/{id}"),
        format!("eab={} mcias={}", b.kid, eab.mcias_name),
    )?;
    commit(tx)?;
    let url = urls.of(&format!("account/{id}"));
    Ok(json_reply(
        201,
        Some(url),
        acct.view(&urls.of(&format!("account/{id}/orders"))),
    ))
}

/// True when the mount already holds `limit` rows of `kind`.
fn count_rows(a: &Authorized<'_>, k: u8, limit: usize) -> Result<bool, Problem> {
    Ok(rows::count(a, k, limit)? >= limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdate {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "termsOfServiceAgreed")]
    #[allow(dead_code)]
    terms: Option<bool>,
}

/// account/{id}: POST-as-GET, contact update, deactivation (§7.3.2, §7.3.6).
pub(crate) fn account(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: Account,
    id: &str,
    jws: &Decoded,
) -> Result<Step, Problem> {
    if acct.id != id {
        return Err(Problem::unauthorized("the kid names another account"));
    }
    let url = urls.of(&format!("account/{id}"));
    let orders = urls.of(&format!("account/{id}/orders"));
    if jws.is_post_as_get() {
        return Ok(json_reply(200, Some(url), acct.view(&orders)));
    }
    let upd: AccountUpdate = serde_json::from_value(jws.payload_json()?)
        .map_err(|e| Problem::malformed(format!("account update: {e}")))?;
    let mut acct = acct;
    if let Some(c) = upd.contact {
        check_contacts(&c)?;
        acct.contact = c;
    }
    match upd.status.as_deref() {
        None => {}
        Some("deactivated") => acct.status = "deactivated".to_owned(),
        Some(s) => return Err(Problem::malformed(format!("status {s:?} cannot be set"))),
    }
    let tx = begin(a)?;
    put(a, &tx, kind::ACCOUNT, id, &acct)?;
    audit(
        a,
        &tx,
        "acme.account.update",
        &format!("acme/{}/account/{id}", acct.role),
        format!("status={}", acct.status),
    )?;
    commit(tx)?;
    Ok(json_reply(200, Some(url), acct.view(&orders)))
}

/// The key authorization of `token` for an account key (§8.1).
pub(crate) fn key_authorization(token: &str, acct: &Account) -> Result<String, Problem> {
    let key = PublicJwk::from_value(&acct.jwk)?;
    Ok(format!("{token}.{}", key.thumbprint()))
}
