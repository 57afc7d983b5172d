//! Argon2id password hashing with configurable parameters.
//!
//! Verification of an unknown username still runs one full Argon2id
//! verification (against a dummy hash made at start), so a login takes the
//! same time whether the account exists or not.
//!
//! Invariant: the async [`Hasher::hash`] and [`Hasher::verify`] run the
//! Argon2id work on tokio's blocking pool (it takes tens of milliseconds
//! and 19 MiB), so a caller on an async thread cannot stall it by accident;
//! the `_blocking` forms are for start-up and for callers already off it.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::IamError;

#[derive(Clone)]
pub struct Hasher(Arc<Inner>);

struct Inner {
    argon: Argon2<'static>,
    dummy: String,
}

impl Hasher {
    /// `memory_kib`, `iterations`, `parallelism`: OWASP's floor is 19 MiB, 2, 1.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, IamError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| IamError::invalid("mcias.argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = argon
            .hash_password(b"dummy password for timing equalization")
            .map(|h| h.to_string())
            .map_err(IamError::internal)?;
        Ok(Self(Arc::new(Inner { argon, dummy })))
    }

    /// A salted Argon2id PHC string for `password`, on the blocking pool.
    pub async fn hash(&self, password: &str) -> Result<String, IamError> {
        let me = self.clone();
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || me.hash_blocking(&password))
            .await
            .map_err(IamError::internal)?
    }

    /// [`Self::verify_blocking`] on the blocking pool.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, IamError> {
        let me = self.clone();
        let password = Zeroizing::new(password.to_owned());
        let phc = phc.map(str::to_owned);
        tokio::task::spawn_blocking(move || me.verify_blocking(&password, phc.as_deref()))
            .await
            .map_err(IamError::internal)
    }

    pub fn hash_blocking(&self, password: &str) -> Result<String, IamError> {
        self.0
            .argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(IamError::internal)
    }

    /// Constant-time verification (argon2 compares in constant time). With
    /// `None` the dummy hash is checked and `false` returned.
    pub fn verify_blocking(&self, password: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.0.dummy);
        let ok = PasswordHash::new(target)
            .map(|h| {
                self.0
                    .argon
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && phc.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h = Hasher::new(19_456, 2, 1).expect("params");
        let a = h.hash_blocking("correct horse battery").expect("hash");
        let b = h.hash_blocking("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(h.verify_blocking("correct horse battery", Some(&a)));
        assert!(!h.verify_blocking("wrong horse battery", Some(&a)));
        assert!(!h.verify_blocking("correct horse battery", None));
        assert!(!h.verify_blocking("x", Some("not a phc string")));
    }

    #[test]
    fn weak_parameters_are_refused() {
        assert!(Hasher::new(1, 0, 1).is_err());
    }
}
