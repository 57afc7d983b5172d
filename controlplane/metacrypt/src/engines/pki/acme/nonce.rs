//! Replay-Nonce values (RFC 8555 §6.5): 16 random bytes, base64url, held
//! in memory until used once or expired.
//!
//! Invariants: a nonce is accepted at most once ([`Nonces::take`] removes
//! it), never after [`NONCE_TTL`], and at most [`MAX_NONCES`] are live
//! (beyond, issuing answers `rateLimited` instead of growing). Nonces do
//! not survive a restart on purpose: an old one is `badNonce`, whose
//! answer carries a fresh nonce that clients retry with.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_kit::ephemeral::SingleUse;

use super::problem::{Kind, Problem};

pub const NONCE_TTL: Duration = Duration::from_secs(3600);
pub const MAX_NONCES: usize = 100_000;

/// The live nonces of one process (shared by every ACME directory).
pub struct Nonces(SingleUse<String, ()>);

impl Default for Nonces {
    fn default() -> Self {
        Self(SingleUse::new(NONCE_TTL, MAX_NONCES))
    }
}

impl Nonces {
    /// A fresh nonce.
    pub fn issue(&self) -> Result<String, Problem> {
        self.issue_at(Instant::now())
    }

    pub(crate) fn issue_at(&self, now: Instant) -> Result<String, Problem> {
        let mut raw = [0u8; 16];
        aws_lc_rs::rand::fill(&mut raw)
            .map_err(|_| Problem::new(Kind::ServerInternal, "no randomness"))?;
        let n = URL_SAFE_NO_PAD.encode(raw);
        self.0
            .insert_at(n.clone(), (), now)
            .map_err(|_| Problem::new(Kind::RateLimited, "too many outstanding nonces"))?;
        Ok(n)
    }

    /// Consumes `nonce`; unknown, used or expired is `badNonce`.
    pub fn take(&self, nonce: &str) -> Result<(), Problem> {
        self.take_at(nonce, Instant::now())
    }

    pub(crate) fn take_at(&self, nonce: &str, now: Instant) -> Result<(), Problem> {
        self.0
            .take_at(nonce, now)
            .ok_or_else(|| Problem::new(Kind::BadNonce, "unknown, used or expired nonce"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_once_and_not_after_its_ttl() {
        let n = Nonces::default();
        let t0 = Instant::now();
        let a = n.issue_at(t0).expect("issue");
        let b = n.issue_at(t0).expect("issue");
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        n.take_at(&a, t0).expect("first use");
        let replay = n.take_at(&a, t0).expect_err("replay");
        assert_eq!(replay.kind, Kind::BadNonce);
        let late = n.take_at(&b, t0 + NONCE_TTL).expect_err("expired");
        assert_eq!(late.kind, Kind::BadNonce);
        assert_eq!(
            n.take("never-issued").expect_err("unknown").kind,
            Kind::BadNonce
        );
    }

    #[test]
    fn a_full_map_refuses_new_nonces_until_old_ones_expire() {
        let n = Nonces(SingleUse::new(NONCE_TTL, 2));
        let t0 = Instant::now();
        n.issue_at(t0).expect("1");
        n.issue_at(t0).expect("2");
        assert_eq!(n.issue_at(t0).expect_err("full").kind, Kind::RateLimited);
        n.issue_at(t0 + NONCE_TTL).expect("expired ones make room");
    }
}
