//! Second factors the caller manages: TOTP ([`totp`]) and passkeys
//! ([`passkey`]). Checking them during a login is [`crate::core::login`]'s
//! job; these modules hold enrolment and the stored credentials.

pub mod passkey;
pub mod totp;
