//! ACME (docs/design/acme.md) as core calls: the directory, nonces, the
//! JWS-authenticated POSTs, and EAB key creation (the only call with an
//! MCIAS caller, under policy `<mount>/acme/<role>/eab` update).
//!
//! Order of checks for a POST: body bound and JWS shape, the nonce (taken,
//! so a replay is `badNonce`), the `url` against the request's URL, then
//! the barrier and mount (`run_acme`), the role being served, the key and
//! signature, and only then the operation.

use mc_kit::clock::unix_now;
use mc_service::auth::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run::EngineOp;
use super::{Caller, Metacrypt};
use crate::engines::Engine;
use crate::engines::pki::acme::flow::{self, Job, Step, Urls};
use crate::engines::pki::acme::jws::{Decoded, KeyRef};
use crate::engines::pki::acme::keys::{self, Revoker};
use crate::engines::pki::acme::model::{Account, EabKey, kind, new_id};
use crate::engines::pki::acme::problem::{Kind, Problem};
use crate::engines::pki::acme::rows::{self, internal};
use crate::engines::pki::acme::{AcmeConfig, orders, validate};
use crate::engines::pki::model::Ttl;
use crate::engines::pki::{Pki, PkiConfig, ops};
use crate::error::CryptError;
use crate::policy::Capability;

pub use crate::engines::pki::acme::flow::{Body, Reply};
pub use crate::engines::pki::acme::jws::MAX_JWS_BYTES;
pub use crate::engines::pki::acme::problem::{
    CONTENT_TYPE as PROBLEM_CONTENT_TYPE, Problem as AcmeProblem,
};

/// `POST /v1/crypt/{mount}/acme/{role}/eab`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EabRequest {
    /// How long the key may be used (default 7 d, at most 30 d).
    #[serde(default)]
    pub ttl: Option<Ttl>,
}

/// A new EAB key, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct EabCreated {
    pub key_id: String,
    /// base64url, as `lego --eab --hmac` and `certbot --eab-hmac-key` take it.
    pub hmac_key: String,
    pub expires_at: i64,
    pub mount: String,
    pub role: String,
}

struct EabOp<'a> {
    mount: &'a str,
    role: &'a str,
}

impl EngineOp for EabOp<'_> {
    const ENGINE: &'static str = Pki::TYPE;
    fn mount(&self) -> &str {
        self.mount
    }
    fn access(&self) -> (String, Capability) {
        (format!("acme/{}/eab", self.role), Capability::Update)
    }
}

const DEFAULT_EAB_SECS: u64 = 7 * 86_400;
const MAX_EAB_SECS: u64 = 30 * 86_400;
/// EAB keys per mount (used ones count until tidied).
const MAX_EAB: usize = 10_000;

/// A fresh 256-bit EAB HMAC key in base64url. A key that begins with `-`
/// reads as an option to certbot's argument parser (`--eab-hmac-key -x…`
/// fails with "expected one argument"), so such a draw is repeated; that
/// costs under 0.03 bits of the 256.
fn new_eab_hmac_key() -> Result<String, CryptError> {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    loop {
        aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| CryptError::internal("no randomness"))?;
        if let Some(key) = eab_hmac_encoding(&raw) {
            return Ok(key);
        }
    }
}

/// The base64url text of `raw`, or `None` when it would begin with `-`.
fn eab_hmac_encoding(raw: &[u8; 32]) -> Option<String> {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    (!key.starts_with('-')).then_some(key)
}

/// The caller ACME operations run as: the bound MCIAS account, or an
/// anonymous ACME principal before an account exists.
fn acme_caller(acct: Option<&Account>, source: Option<std::net::IpAddr>) -> Caller {
    let (id, name) = match acct {
        Some(a) => (
            a.mcias_subject.clone(),
            format!("acme:{}@{}", a.id, a.mcias_name),
        ),
        None => ("acme".to_owned(), "acme".to_owned()),
    };
    Caller {
        principal: Some(Principal {
            account_id: id,
            username: name,
            account_type: "system".to_owned(),
            roles: Vec::new(),
            tags: Vec::new(),
            jti: String::new(),
            expires_at: 0,
            scopes: Vec::new(),
        }),
        source,
    }
}

/// The mount's ACME config when `role` is served, else 404.
fn served(a: &crate::core::run::Authorized<'_>, role: &str) -> Result<AcmeConfig, Problem> {
    let cfg = PkiConfig::of(&a.mount().config).acme;
    if cfg.roles.iter().any(|r| r == role) {
        Ok(cfg)
    } else {
        Err(Problem::malformed(format!("role {role} is not served over ACME")).with_status(404))
    }
}

impl Metacrypt {
    fn acme_run<R>(
        &self,
        caller: &Caller,
        mount: &str,
        f: impl FnOnce(&crate::core::run::Authorized<'_>) -> Result<R, Problem>,
    ) -> Result<R, Problem> {
        self.run_acme(caller, mount, |a| Ok(f(&a)))
            .map_err(internal)?
    }

    /// A fresh Replay-Nonce.
    pub fn acme_nonce(&self) -> Result<String, Problem> {
        self.acme_nonces.issue()
    }

    /// The directory of `mount`/`role`, whose URLs start with `base`.
    pub fn acme_directory(&self, mount: &str, role: &str, base: String) -> Result<Value, Problem> {
        self.acme_run(&acme_caller(None, None), mount, |a| {
            served(a, role)?;
            Ok(Urls { base }.directory())
        })
    }

    /// The `base_url` of the mount's ACME config, when set.
    pub fn acme_base_url(&self, mount: &str) -> Option<String> {
        self.acme_run(&acme_caller(None, None), mount, |a| {
            Ok(PkiConfig::of(&a.mount().config).acme.base_url)
        })
        .ok()
        .flatten()
    }

    /// A JWS-authenticated POST to `base/path`.
    pub async fn acme_post(
        &self,
        mount: &str,
        role: &str,
        base: String,
        path: &str,
        body: &[u8],
        source: Option<std::net::IpAddr>,
    ) -> Result<Reply, Problem> {
        let jws = Decoded::parse(body)?;
        let h = jws.acme_header()?;
        self.acme_nonces.take(&h.nonce)?;
        let urls = Urls { base };
        if h.url != urls.of(path) {
            return Err(Problem::unauthorized(format!(
                "the JWS url {:?} is not this request's URL",
                h.url
            )));
        }
        let anon = acme_caller(None, source);
        if path == "new-account" {
            return step(self.acme_run(&anon, mount, |a| {
                served(a, role)?;
                flow::new_account(a, &urls, role, &h, &jws)
            })?);
        }
        if let KeyRef::Jwk(key) = &h.key {
            if path != "revoke-cert" {
                return Err(Problem::malformed(
                    "only new-account and revoke-cert are signed with a jwk; use the account's kid",
                ));
            }
            return step(self.acme_run(&anon, mount, |a| {
                served(a, role)?;
                keys::revoke(a, role, Revoker::CertKey(h.alg, key), &jws)
            })?);
        }
        let (acct, cfg) = self.acme_run(&anon, mount, |a| {
            let cfg = served(a, role)?;
            Ok((flow::account_of(a, &urls, role, &h, &jws)?, cfg))
        })?;
        let bound = acme_caller(Some(&acct), source);
        let segs: Vec<&str> = path.split('/').collect();
        let s = self.acme_run(&bound, mount, |a| match segs.as_slice() {
            ["account", id] => flow::account(a, &urls, acct.clone(), id, &jws),
            ["new-order"] => orders::new_order(a, &urls, &acct, &jws),
            ["order", id] => orders::order(a, &urls, &acct, id),
            ["order", id, "finalize"] => orders::finalize(a, &urls, &acct, id, &jws),
            ["authz", id] => orders::authz(a, &urls, &acct, id, &jws),
            ["chall", z, i] => orders::challenge(a, &urls, &acct, z, i, &jws),
            ["cert", id] => orders::cert(a, &acct, id),
            ["revoke-cert"] => keys::revoke(a, role, Revoker::Account(&acct), &jws),
            ["key-change"] => keys::key_change(a, &urls, &acct, &h.url, &jws),
            _ => Err(Problem::malformed(format!("no ACME resource {path}")).with_status(404)),
        })?;
        match s {
            Step::Done(r) => Ok(r),
            Step::Validate(job) => {
                self.acme_validate(mount, &urls, &bound, &acct, &cfg, job)
                    .await
            }
        }
    }

    async fn acme_validate(
        &self,
        mount: &str,
        urls: &Urls,
        bound: &Caller,
        acct: &Account,
        cfg: &AcmeConfig,
        job: Job,
    ) -> Result<Reply, Problem> {
        let outcome = validate::run(&job, cfg).await;
        if let Err(p) = &outcome {
            tracing::info!(challenge = %job.kind, name = %job.name, problem = %p, "acme: validation failed");
        }
        step(self.acme_run(bound, mount, |a| {
            orders::record(a, urls, acct, &job, outcome)
        })?)
    }

    /// Creates an EAB key for `role`, bound to the calling MCIAS account.
    pub fn acme_eab(
        &self,
        c: &Caller,
        mount: &str,
        role: &str,
        r: impl FnOnce() -> Result<EabRequest, CryptError>,
    ) -> Result<EabCreated, CryptError> {
        self.run(c, &EabOp { mount, role }, |a| {
            let req = r()?;
            let cfg = PkiConfig::of(&a.mount().config).acme;
            if !cfg.roles.iter().any(|x| x == role) {
                return Err(CryptError::invalid(
                    "role",
                    format!("{role} is not served over ACME: add it to the mount's acme.roles"),
                ));
            }
            ops::get_role(&a, role)?;
            let ttl = req.ttl.map_or(DEFAULT_EAB_SECS, |t| t.0);
            if ttl == 0 || ttl > MAX_EAB_SECS {
                return Err(CryptError::invalid("ttl", "1s to 30d"));
            }
            let crypt = |p: Problem| CryptError::internal(p.to_string());
            if rows::count(&a, kind::EAB, MAX_EAB).map_err(crypt)? >= MAX_EAB {
                return Err(CryptError::FailedPrecondition(
                    "the mount holds 10000 EAB keys".to_owned(),
                ));
            }
            let key_id = format!("eab_{}", new_id().map_err(crypt)?);
            let hmac_key = new_eab_hmac_key()?;
            let principal = c.require()?;
            let now = unix_now();
            let expires = now + i64::try_from(ttl).map_err(CryptError::internal)?;
            let row = EabKey {
                role: role.to_owned(),
                hmac: hmac_key.clone(),
                mcias_subject: principal.account_id.clone(),
                mcias_name: principal.username.clone(),
                created: now,
                expires,
                account: None,
            };
            let tx = rows::begin(&a).map_err(crypt)?;
            rows::put(&a, &tx, kind::EAB, &key_id, &row).map_err(crypt)?;
            rows::audit(
                &a,
                &tx,
                "acme.eab",
                &format!("acme/{role}/eab/{key_id}"),
                format!("expires={expires}"),
            )
            .map_err(crypt)?;
            rows::commit(tx).map_err(crypt)?;
            Ok(EabCreated {
                key_id,
                hmac_key,
                expires_at: expires,
                mount: mount.to_owned(),
                role: role.to_owned(),
            })
        })
    }
}

fn step(s: Step) -> Result<Reply, Problem> {
    match s {
        Step::Done(r) => Ok(r),
        Step::Validate(_) => Err(Problem::new(Kind::ServerInternal, "unexpected validation")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eab_hmac_keys_never_begin_with_a_dash() {
        // 62 is `-` in base64url: a first byte of 0b111110xx encodes to it.
        let mut raw = [0u8; 32];
        raw[0] = 0b1111_1000;
        assert_eq!(eab_hmac_encoding(&raw), None);
        raw[0] = 0b1111_1100;
        let key = eab_hmac_encoding(&raw).expect("`_` is a fine first character");
        assert!(key.starts_with('_') && key.len() == 43, "{key}");
        for _ in 0..512 {
            let key = new_eab_hmac_key().expect("key");
            assert!(!key.starts_with('-') && key.len() == 43, "{key}");
        }
    }
}
