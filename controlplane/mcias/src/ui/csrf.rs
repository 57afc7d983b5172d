//! The web UI's CSRF tokens: HMAC-SHA256 of the session's `jti` under a key
//! made at start (per process; never stored), so a token is bound to one
//! session and a restart invalidates every form in flight. The key belongs
//! to the UI, not to the core: no other surface has forms.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::error::IamError;

/// The per-process CSRF key.
pub struct Csrf(Option<aws_lc_rs::hmac::Key>);

impl Csrf {
    /// A fresh random key.
    pub fn new() -> Result<Self, IamError> {
        use aws_lc_rs::rand::SecureRandom;
        let mut k = zeroize::Zeroizing::new([0_u8; 32]);
        aws_lc_rs::rand::SystemRandom::new()
            .fill(k.as_mut_slice())
            .map_err(IamError::internal)?;
        Ok(Self(Some(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            k.as_slice(),
        ))))
    }

    /// No key: no token verifies (what the UI falls back to without randomness).
    pub(crate) fn refusing() -> Self {
        Self(None)
    }

    /// The CSRF token of the session `jti`.
    pub fn token(&self, jti: &str) -> String {
        self.0
            .as_ref()
            .map(|k| B64.encode(aws_lc_rs::hmac::sign(k, jti.as_bytes())))
            .unwrap_or_default()
    }

    /// Whether `token` is the CSRF token of the session `jti`.
    pub fn verify(&self, jti: &str, token: &str) -> bool {
        let Some(key) = &self.0 else {
            return false;
        };
        B64.decode(token)
            .is_ok_and(|t| aws_lc_rs::hmac::verify(key, jti.as_bytes(), &t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_session_and_the_key() {
        let a = Csrf::new().expect("key");
        let b = Csrf::new().expect("key");
        let t = a.token("jti-1");
        assert!(a.verify("jti-1", &t));
        assert!(!a.verify("jti-2", &t), "another session");
        assert!(!b.verify("jti-1", &t), "another process");
        assert!(!a.verify("jti-1", "not base64!"));
        let none = Csrf::refusing();
        assert!(!none.verify("jti-1", &none.token("jti-1")));
    }
}
