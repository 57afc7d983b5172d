//! The ssh engine's operations as core calls: each names its mount, its
//! policy path and capability ([`EngineOp`]) and runs through
//! [`Metacrypt::run`]; the public reads (CA key line, KRL) bypass it on
//! purpose: they read only the clear public rows and answer while sealed.
//! Policy paths (docs/design/sshca.md §Routes): `<mount>/ca` update/read,
//! `profiles[/<n>]`, `sign-key/<profile>` update, `issued[/<serial>]`,
//! `krl` update, `tidy` update.
//!
//! Bodies are decoders run inside `run`, after the barrier and policy: a
//! caller without rights gets 403 whatever it sent.

use super::run::EngineOp;
use super::{Caller, Metacrypt};
use crate::engines::Engine;
use crate::engines::ssh::model::{
    CaInfo, CaRequest, CertRecord, Profile, RevokeAnswer, RevokeRequest, SignRequest, Signed,
};
use crate::engines::ssh::{Ssh, ops, public};
use crate::error::CryptError;
use crate::policy::Capability;

/// One ssh operation's (mount, policy path, capability).
struct SshOp<'a>(&'a str, String, Capability, Option<Capability>);

impl EngineOp for SshOp<'_> {
    const ENGINE: &'static str = Ssh::TYPE;
    fn mount(&self) -> &str {
        self.0
    }
    fn access(&self) -> (String, Capability) {
        (self.1.clone(), self.2)
    }
    fn alternative(&self) -> Option<Capability> {
        self.3
    }
}

fn at(mount: &str, sub: impl Into<String>, c: Capability) -> SshOp<'_> {
    SshOp(mount, sub.into(), c, None)
}

type Body<T> = Result<T, CryptError>;

impl Metacrypt {
    pub fn ssh_create_ca(
        &self,
        c: &Caller,
        mount: &str,
        r: impl FnOnce() -> Body<CaRequest>,
    ) -> Result<CaInfo, CryptError> {
        self.run(c, &at(mount, "ca", Capability::Update), |a| {
            ops::create_ca(&a, &r()?)
        })
    }

    pub fn ssh_ca(&self, c: &Caller, mount: &str) -> Result<CaInfo, CryptError> {
        self.run(c, &at(mount, "ca", Capability::Read), |a| ops::get_ca(&a))
    }

    pub fn ssh_profiles(&self, c: &Caller, mount: &str) -> Result<Vec<String>, CryptError> {
        self.run(c, &at(mount, "profiles", Capability::List), |a| {
            ops::list_profiles(&a)
        })
    }

    pub fn ssh_profile(&self, c: &Caller, mount: &str, name: &str) -> Result<Profile, CryptError> {
        let o = at(mount, format!("profiles/{name}"), Capability::Read);
        self.run(c, &o, |a| ops::get_profile(&a, name))
    }

    pub fn ssh_put_profile(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
        p: impl FnOnce() -> Body<Profile>,
    ) -> Result<Profile, CryptError> {
        let o = SshOp(
            mount,
            format!("profiles/{name}"),
            Capability::Create,
            Some(Capability::Update),
        );
        self.run(c, &o, |a| ops::put_profile(&a, name, p()?))
    }

    pub fn ssh_delete_profile(
        &self,
        c: &Caller,
        mount: &str,
        name: &str,
    ) -> Result<(), CryptError> {
        let o = at(mount, format!("profiles/{name}"), Capability::Delete);
        self.run(c, &o, |a| ops::delete_profile(&a, name))
    }

    pub fn ssh_sign(
        &self,
        c: &Caller,
        mount: &str,
        profile: &str,
        r: impl FnOnce() -> Body<SignRequest>,
    ) -> Result<Signed, CryptError> {
        let o = at(mount, format!("sign-key/{profile}"), Capability::Update);
        self.run(c, &o, |a| ops::sign(&a, profile, &r()?))
    }

    pub fn ssh_issued(
        &self,
        c: &Caller,
        mount: &str,
        after: impl FnOnce() -> Body<Option<u64>>,
    ) -> Result<Vec<u64>, CryptError> {
        self.run(c, &at(mount, "issued", Capability::List), |a| {
            ops::list_issued(&a, after()?)
        })
    }

    pub fn ssh_cert(
        &self,
        c: &Caller,
        mount: &str,
        serial: &str,
    ) -> Result<CertRecord, CryptError> {
        let o = at(mount, format!("issued/{serial}"), Capability::Read);
        self.run(c, &o, |a| ops::get_issued(&a, serial))
    }

    pub fn ssh_revoke(
        &self,
        c: &Caller,
        mount: &str,
        r: impl FnOnce() -> Body<RevokeRequest>,
    ) -> Result<RevokeAnswer, CryptError> {
        self.run(c, &at(mount, "krl", Capability::Update), |a| {
            ops::revoke(&a, &r()?)
        })
    }

    pub fn ssh_tidy(&self, c: &Caller, mount: &str) -> Result<u64, CryptError> {
        self.run(c, &at(mount, "tidy", Capability::Update), |a| ops::tidy(&a))
    }

    /// Public: the CA public key line (`TrustedUserCAKeys`, `@cert-authority`).
    pub fn ssh_public_key(&self, mount: &str) -> Result<String, CryptError> {
        let mut line = public::get(&self.store, mount)?.public_key;
        line.push('\n');
        Ok(line)
    }

    /// Public: the current KRL's bytes (`RevokedKeys`).
    pub fn ssh_public_krl(&self, mount: &str) -> Result<Vec<u8>, CryptError> {
        use base64::Engine as _;
        let row = public::get(&self.store, mount)?;
        base64::engine::general_purpose::STANDARD
            .decode(row.krl)
            .map_err(CryptError::internal)
    }
}
