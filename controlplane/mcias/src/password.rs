//! Argon2id password hashing with configurable parameters.
//!
//! Verification of an unknown username still runs one full Argon2id
//! verification (against a dummy hash made at start), so a login takes the
//! same time whether the account exists or not.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::IamError;

#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    dummy: String,
}

impl Hasher {
    /// `memory_kib`, `iterations`, `parallelism`: OWASP's floor is 19 MiB, 2, 1.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, IamError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| IamError::invalid("mcias.argon2", e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut me = Self {
            argon,
            dummy: String::new(),
        };
        me.dummy = me.hash("dummy password for timing equalization")?;
        Ok(me)
    }

    pub fn hash(&self, password: &str) -> Result<String, IamError> {
        self.argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(IamError::internal)
    }

    /// Constant-time verification (argon2 compares in constant time). With
    /// `None` the dummy hash is checked and `false` returned.
    pub fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let target = phc.unwrap_or(&self.dummy);
        let ok = PasswordHash::new(target)
            .map(|h| self.argon.verify_password(password.as_bytes(), &h).is_ok())
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
        let a = h.hash("correct horse battery").expect("hash");
        let b = h.hash("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(h.verify("correct horse battery", Some(&a)));
        assert!(!h.verify("wrong horse battery", Some(&a)));
        assert!(!h.verify("correct horse battery", None));
        assert!(!h.verify("x", Some("not a phc string")));
    }

    #[test]
    fn weak_parameters_are_refused() {
        assert!(Hasher::new(1, 0, 1).is_err());
    }
}
