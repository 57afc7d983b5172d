//! The pki engine's operations as core calls: each names its mount, its
//! policy path and capability ([`EngineOp`]) and runs through
//! [`Metacrypt::run`]; the public reads (CA, chains, CRLs) bypass it on
//! purpose: they read only the clear public rows and answer while sealed.
//! Policy paths (docs/design/pki.md §Routes): `<mount>/root` update,
//! `issuers[/<n>]`, `roles[/<n>]`, `issue/<role>` and `sign-csr/<role>`
//! update, `certs[/<serial>]`, `revoke`, `crl`, `tidy` update.
//!
//! Bodies are given as decoders that run inside `run`, after the barrier
//! and policy: a caller without rights gets 403 whatever it sent, on REST
//! and gRPC alike.

use super::run::EngineOp;
use super::{Caller, Metacrypt};
use crate::engines::pki::model::{
    CaRequest, CertRecord, ImportRequest, IssueRequest, Issued, IssuerInfo, RevokeAnswer,
    RevokeRequest, Role,
};
use crate::engines::pki::ops::pem_block;
use crate::engines::pki::{Pki, certs, ops, public};
use crate::engines::{Engine, pki::model::ROOT};
use crate::error::CryptError;
use crate::policy::Capability;

struct Op<'a> {
    mount: &'a str,
    sub: String,
    capability: Capability,
    alternative: Option<Capability>,
}

impl EngineOp for Op<'_> {
    const ENGINE: &'static str = Pki::TYPE;
    fn mount(&self) -> &str {
        self.mount
    }
    fn access(&self) -> (String, Capability) {
        (self.sub.clone(), self.capability)
    }
    fn alternative(&self) -> Option<Capability> {
        self.alternative
    }
}

fn op<'a>(mount: &'a str, sub: impl Into<String>, capability: Capability) -> Op<'a> {
    Op {
        mount,
        sub: sub.into(),
        capability,
        alternative: None,
    }
}

/// A public PEM or DER answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicPki {
    Pem(String),
    Der(Vec<u8>),
}

impl Metacrypt {
    pub fn pki_root_generate(
        &self,
        c: &Caller,
        mount: &str,
        r: impl FnOnce() -> Result<CaRequest, CryptError>,
    ) -> Result<IssuerInfo, CryptError> {
        self.run(c, &op(mount, "root", Capability::Update), |a| {
            ops::root_generate(&a, &r()?)
        })
    }

    pub fn pki_root_import(
        &self,
        c: &Caller,
        mount: &str,
        r: impl FnOnce() -> Result<ImportRequest, CryptError>,
    ) -> Result<IssuerInfo, CryptError> {
        self.run(c, &op(mount, "root", Capability::Update), |a| {
            ops::root_import(&a, &r()?)
        })
    }

    pub fn pki_issuers(&self, c: &Caller, mount: &str) -> Result<Vec<String>, CryptError> {
        self.run(c, &op(mount, "issuers", Capability::List), |a| {
            ops::list_issuers(&a)
        })
    }

    pub fn pki_issuer(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
    ) -> Result<IssuerInfo, CryptError> {
        self.run(
            c,
            &op(mount, format!("issuers/{name}"), Capability::Read),
            |a| ops::get_issuer(&a, name),
        )
    }

    pub fn pki_create_issuer(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        r: impl FnOnce() -> Result<CaRequest, CryptError>,
    ) -> Result<IssuerInfo, CryptError> {
        self.run(
            c,
            &op(mount, format!("issuers/{name}"), Capability::Create),
            |a| ops::create_issuer(&a, name, &r()?),
        )
    }

    pub fn pki_rotate_issuer(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
    ) -> Result<IssuerInfo, CryptError> {
        self.run(
            c,
            &op(mount, format!("issuers/{name}"), Capability::Update),
            |a| ops::rotate_issuer(&a, name),
        )
    }

    pub fn pki_roles(&self, c: &Caller, mount: &str) -> Result<Vec<String>, CryptError> {
        self.run(c, &op(mount, "roles", Capability::List), |a| {
            ops::list_roles(&a)
        })
    }

    pub fn pki_role(&self, c: &Caller, mount: &str, name: &str) -> Result<Role, CryptError> {
        self.run(
            c,
            &op(mount, format!("roles/{name}"), Capability::Read),
            |a| ops::get_role(&a, name),
        )
    }

    pub fn pki_put_role(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        role: impl FnOnce() -> Result<Role, CryptError>,
    ) -> Result<Role, CryptError> {
        let o = Op {
            alternative: Some(Capability::Update),
            ..op(mount, format!("roles/{name}"), Capability::Create)
        };
        self.run(c, &o, |a| ops::put_role(&a, name, role()?))
    }

    pub fn pki_delete_role(&self, c: &Caller, mount: &str, name: &str) -> Result<(), CryptError> {
        self.run(
            c,
            &op(mount, format!("roles/{name}"), Capability::Delete),
            |a| ops::delete_role(&a, name),
        )
    }

    pub fn pki_issue(
        &self,
        c: &Caller,
        mount: &str,
        role: &str,
        r: impl FnOnce() -> Result<IssueRequest, CryptError>,
    ) -> Result<Issued, CryptError> {
        self.run(
            c,
            &op(mount, format!("issue/{role}"), Capability::Update),
            |a| certs::issue(&a, role, &r()?),
        )
    }

    pub fn pki_sign(
        &self,
        c: &Caller,
        mount: &str,
        role: &str,
        r: impl FnOnce() -> Result<IssueRequest, CryptError>,
    ) -> Result<Issued, CryptError> {
        self.run(
            c,
            &op(mount, format!("sign-csr/{role}"), Capability::Update),
            |a| certs::sign_csr(&a, role, &r()?),
        )
    }

    pub fn pki_certs(
        &self,
        c: &Caller,
        mount: &str,
        after: impl FnOnce() -> Result<Option<String>, CryptError>,
    ) -> Result<Vec<String>, CryptError> {
        self.run(c, &op(mount, "certs", Capability::List), |a| {
            certs::list_certs(&a, after()?.as_deref())
        })
    }

    pub fn pki_cert(
        &self,
        c: &Caller,
        mount: &str,
        serial: &str,
    ) -> Result<CertRecord, CryptError> {
        self.run(
            c,
            &op(mount, format!("certs/{serial}"), Capability::Read),
            |a| certs::get_cert(&a, serial),
        )
    }

    pub fn pki_renew(&self, c: &Caller, mount: &str, serial: &str) -> Result<Issued, CryptError> {
        self.run(
            c,
            &op(mount, format!("certs/{serial}"), Capability::Update),
            |a| certs::renew(&a, serial),
        )
    }

    pub fn pki_revoke(
        &self,
        c: &Caller,
        mount: &str,
        r: impl FnOnce() -> Result<RevokeRequest, CryptError>,
    ) -> Result<RevokeAnswer, CryptError> {
        self.run(c, &op(mount, "revoke", Capability::Update), |a| {
            let r = r()?;
            certs::revoke(&a, &r.serial, r.reason)
        })
    }

    pub fn pki_rotate_crl(&self, c: &Caller, mount: &str) -> Result<usize, CryptError> {
        self.run(c, &op(mount, "crl", Capability::Update), |a| {
            ops::rotate_crls(&a)
        })
    }

    pub fn pki_tidy(&self, c: &Caller, mount: &str) -> Result<u64, CryptError> {
        self.run(c, &op(mount, "tidy", Capability::Update), |a| {
            certs::tidy(&a)
        })
    }

    /// Public: the current certificate of issuer `name` (`root`: the CA).
    pub fn pki_public_cert(
        &self,
        mount: &str,
        name: Option<&str>,
        der: bool,
    ) -> Result<PublicPki, CryptError> {
        let l = public::one(&self.store, mount, name.unwrap_or(ROOT), None)?;
        if der {
            let d =
                crate::engines::pki::x509::pem_der(&l.row.cert_pem, "certificate", "CERTIFICATE")?;
            return Ok(PublicPki::Der(d));
        }
        Ok(PublicPki::Pem(l.row.cert_pem))
    }

    /// Public: with `name`, that issuer's chain (itself then its parents);
    /// without, every issuer version's certificate, newest first.
    pub fn pki_public_chain(
        &self,
        mount: &str,
        name: Option<&str>,
        version: Option<u32>,
    ) -> Result<String, CryptError> {
        match name {
            Some(n) => Ok(public::one(&self.store, mount, n, version)?.row.chain_pem),
            None => {
                let mut all = public::all(&self.store, mount)?;
                all.sort_by(|a, b| (b.version, &a.name).cmp(&(a.version, &b.name)));
                Ok(all.into_iter().map(|l| l.row.cert_pem).collect())
            }
        }
    }

    /// Public: the CRL of issuer `name` (`root` when `None`) at `version`.
    pub fn pki_public_crl(
        &self,
        mount: &str,
        name: Option<&str>,
        version: Option<u32>,
        der: bool,
    ) -> Result<PublicPki, CryptError> {
        let l = public::one(&self.store, mount, name.unwrap_or(ROOT), version)?;
        let d = l.crl_der()?;
        if der {
            return Ok(PublicPki::Der(d));
        }
        Ok(PublicPki::Pem(pem_block("X509 CRL", &d)))
    }
}
