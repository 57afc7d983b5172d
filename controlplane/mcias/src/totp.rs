//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s, ±1 step).
//!
//! The secret is sealed under the master key like the signing keys. A code
//! is accepted once: the step it matched must be later than the last one
//! accepted for the account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use totp_rs::{Algorithm, Builder, Totp};

use crate::error::IamError;
use crate::keys::MasterKey;
use crate::model::Account;

pub const ISSUER: &str = "Metacircular";

/// Secrets are sealed bound to their account row.
const TABLE: &str = "accounts";

fn build(secret: Vec<u8>, account: &str) -> Result<Totp, IamError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(IamError::internal)
}

/// A new secret for `account`: (sealed for storage, base32 for the user, otpauth URL).
pub fn enroll(master: &MasterKey, account: &Account) -> Result<(String, String, String), IamError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut secret = vec![0_u8; 20];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(IamError::internal)?;
    let totp = build(secret.clone(), &account.username)?;
    let sealed = B64.encode(master.seal(TABLE, account.id.as_bytes(), &secret)?);
    let url = totp.to_url().map_err(IamError::internal)?;
    Ok((sealed, totp.secret().to_base32(), url))
}

/// The step `code` matches for `account` at `now`, if it is valid and unused.
pub fn check(
    master: &MasterKey,
    account: &Account,
    code: &str,
    now: u64,
) -> Result<Option<u64>, IamError> {
    if account.totp_sealed.is_empty() || code.len() > 16 {
        return Ok(None);
    }
    let sealed = B64
        .decode(&account.totp_sealed)
        .map_err(IamError::internal)?;
    let secret = master.open(TABLE, account.id.as_bytes(), account.id.as_bytes(), &sealed)?;
    let totp = build(secret.to_vec(), &account.username)?;
    Ok(totp
        .check(code.trim(), now)
        .filter(|step| *step > account.totp_last_step))
}

/// The code `account`'s authenticator shows at `now` (for tests).
#[cfg(test)]
pub(crate) fn code_at(master: &MasterKey, account: &Account, now: u64) -> String {
    let sealed = B64.decode(&account.totp_sealed).expect("sealed secret");
    let secret = master
        .open(TABLE, account.id.as_bytes(), account.id.as_bytes(), &sealed)
        .expect("opens");
    build(secret.to_vec(), &account.username)
        .expect("totp")
        .generate(now)
        .to_string()
}
