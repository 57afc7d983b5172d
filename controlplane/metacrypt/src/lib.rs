//! Metacrypt: the platform's cryptographic service. Built so far: the
//! seal/unseal barrier (passphrase and Shamir slots, root key → MEK → a DEK
//! ring per mount, the versioned at-rest envelope), engine mounts, path
//! policy, the kv engine and the `sys` API, over REST and gRPC, and the web
//! UI ([`ui`]). Transit, user and the Vault facade follow
//! (docs/design/metacrypt.md).
//!
//! Split by capability, not transport: [`core`] holds the operations (and
//! imports neither adapter), [`api`] the REST and gRPC adapters over it;
//! both are authorized by one [`methods`] map. Only `barrier` holds keys;
//! every engine operation goes through `Metacrypt::run` (`core/run.rs`).

pub mod api;
pub(crate) mod barrier;
pub mod config;
pub mod core;
pub mod engines;
pub mod error;
pub mod hosted;
pub mod methods;
pub mod policy;
pub(crate) mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod ui;

pub use config::MetacryptConfig;
pub use core::Metacrypt;
pub use hosted::dev_passphrase_path;

/// Entry points for the fuzz targets (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// The Vault facade's request decoding (pure): whether it decodes.
    pub use crate::api::vault::decode::accepts as vault_request_accepts;
    pub use crate::barrier::envelope::{Envelope, EnvelopeError, parse as parse_envelope};
    /// The transit core, for the criterion benches (`benches/transit.rs`).
    pub use crate::engines::transit;
    pub use crate::engines::transit::ciphertext::{
        Alphabet as TransitAlphabet, encode as encode_transit, parse as parse_transit,
    };

    pub use crate::engines::pki::csr::{Csr, MAX_CSR_BYTES, parse as parse_csr};
    pub use crate::engines::pki::ocsp::{
        MAX_CERTS as MAX_OCSP_CERTS, MAX_NONCE as MAX_OCSP_NONCE, MAX_REQUEST as MAX_OCSP_REQUEST,
        decode_request as decode_ocsp_request,
    };

    /// ACME's JWS decoding, header checks and key decoding (pure).
    pub use crate::engines::pki::acme::jws::{Decoded as AcmeJws, KeyRef, MAX_JWS_BYTES};

    /// key-change's inner JWS (RFC 8555 §7.3.5) in an outer payload: whether
    /// it decodes, its header passes and it verifies with its own key.
    pub fn acme_key_change_inner(payload: &serde_json::Value, url: &str) -> bool {
        crate::engines::pki::acme::keys::inner(payload, url).is_ok()
    }

    /// The sign-csr path after decoding: the CSR's names checked against a
    /// permissive role (subdomains of `test`, wildcards, IPs); the names
    /// that pass, or `None` when refused.
    pub fn csr_names(csr: &Csr) -> Option<usize> {
        let role = crate::engines::pki::model::Role {
            allowed_domains: vec!["test".to_owned()],
            allow_subdomains: true,
            allow_wildcard: true,
            allow_ip_sans: true,
            ..serde_json::from_value(serde_json::json!({})).ok()?
        };
        let ips: Vec<String> = csr.ips.iter().map(ToString::to_string).collect();
        crate::engines::pki::names::check_all(&role, &csr.common_name, &csr.dns, &ips)
            .ok()
            .map(|(d, i)| d.len() + i.len())
    }

    /// The ssh engine's sign path before the CA: the JSON body decoded,
    /// checked against a fixed profile (principals `alice`, `deploy-*`;
    /// max TTL 1 h; `source-address` settable), then the public key line
    /// parsed. The principals of an accepted request, or `None` when refused.
    pub fn ssh_sign_request(body: &[u8]) -> Option<Vec<String>> {
        use crate::engines::ssh::model::{Profile, SignRequest};
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "allowed_principals": ["alice", "deploy-*"],
            "allowed_critical_options": ["source-address"],
            "max_ttl": "1h"
        }))
        .ok()?;
        let profile = profile.check().ok()?;
        let r: SignRequest = serde_json::from_slice(body).ok()?;
        let checked = crate::engines::ssh::profile::check_request(&profile, &r).ok()?;
        crate::engines::ssh::cert::parse_subject(&r.public_key).ok()?;
        Some(checked.principals)
    }

    /// Parses a Shamir share's text; `Some((set id, x))` when it is well formed.
    pub fn decode_share(text: &str) -> Option<(u32, u8)> {
        crate::barrier::shamir::decode(text)
            .ok()
            .map(|s| (s.set_id, s.x))
    }
}
