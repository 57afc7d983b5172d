//! MCIAS domain types, validated at construction.

use serde::{Deserialize, Serialize};

use crate::error::IamError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Guest,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, IamError> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            "guest" => Ok(Self::Guest),
            _ => Err(IamError::invalid(
                "roles",
                format!("unknown role `{s}` (admin, user or guest)"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
            Self::Guest => "guest",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Human,
    System,
}

impl AccountType {
    pub fn parse(s: &str) -> Result<Self, IamError> {
        match s.to_ascii_lowercase().as_str() {
            "human" | "" => Ok(Self::Human),
            "system" => Ok(Self::System),
            _ => Err(IamError::invalid(
                "type",
                format!("unknown account type `{s}` (human or system)"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::System => "system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Disabled,
    Deleted,
}

impl AccountStatus {
    pub fn parse(s: &str) -> Result<Self, IamError> {
        match s.to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            "deleted" => Ok(Self::Deleted),
            _ => Err(IamError::invalid(
                "status",
                format!("unknown status `{s}` (active, disabled)"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
}

/// An account as stored (`accounts` table, keyed by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub account_type: AccountType,
    pub status: AccountStatus,
    pub roles: Vec<Role>,
    pub tags: Vec<String>,
    /// PHC string (Argon2id); empty for system accounts.
    pub password_hash: String,
    pub created_at: i64,
    pub last_login: i64,
    /// Consecutive failed logins since the last success.
    pub failed_logins: u32,
    pub locked_until: i64,
    /// Bumped on password change and disable: older tokens stop validating.
    pub token_generation: u32,
    /// TOTP secret sealed under the master key (base64url); empty when none.
    #[serde(default)]
    pub totp_sealed: String,
    /// Set once enrolment is confirmed with a valid code.
    #[serde(default)]
    pub totp_enabled: bool,
    /// The last accepted 30 s step: codes are single-use.
    #[serde(default)]
    pub totp_last_step: u64,
    /// Wrong second factors (TOTP codes, two-step nonces) since the last
    /// success: counted apart from `failed_logins`.
    #[serde(default)]
    pub totp_failures: u32,
    /// Until when the second step of a login is refused.
    #[serde(default)]
    pub totp_locked_until: i64,
    /// Addresses (IPv6: their /64) this account last signed in from, newest
    /// first, at most [`crate::core::lockout::MAX_KNOWN`]: the lockout does
    /// not apply to them (see [`crate::core::lockout`]).
    #[serde(default)]
    pub known_sources: Vec<String>,
}

impl Account {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }
}

pub const MAX_TAGS: usize = 32;
/// Longest service name a login (or passkey login) may ask for: it is stored
/// in the token record and the audit log of every login.
pub const MAX_SERVICE_NAME: usize = 128;
/// Longest username a login may carry (longer ones name no account).
pub const MAX_LOGIN_USERNAME: usize = 256;
/// Most roles one list (account or rule) may name: there are three.
pub const MAX_ROLES: usize = 16;

/// The service a login is for: `mcias` when absent or empty, else 1 to
/// [`MAX_SERVICE_NAME`] bytes with no control characters (refused, never
/// truncated: it decides which policy applies).
pub fn check_service_name(service: Option<&str>) -> Result<String, IamError> {
    let s = service.unwrap_or_default();
    if s.is_empty() {
        return Ok("mcias".to_owned());
    }
    if s.len() > MAX_SERVICE_NAME || s.chars().any(char::is_control) {
        return Err(IamError::invalid(
            "service_name",
            format!("at most {MAX_SERVICE_NAME} bytes, no control characters"),
        ));
    }
    Ok(s.to_owned())
}

/// A login's username before lookup: bounded (400), not yet validated (an
/// ill-formed one is simply unknown, answered like a wrong password).
pub fn check_login_username(username: &str) -> Result<(), IamError> {
    if username.len() > MAX_LOGIN_USERNAME {
        return Err(IamError::invalid(
            "username",
            format!("at most {MAX_LOGIN_USERNAME} bytes"),
        ));
    }
    Ok(())
}

pub fn check_username(name: &str) -> Result<String, IamError> {
    let lower = name.trim().to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() <= 64
        && lower.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(lower)
    } else {
        Err(IamError::invalid(
            "username",
            "1 to 64 characters of a-z, 0-9, `.`, `_` and `-`",
        ))
    }
}

pub fn check_tags(tags: &[String]) -> Result<Vec<String>, IamError> {
    if tags.len() > MAX_TAGS {
        return Err(IamError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'/' | b'=')
            });
        if !ok {
            return Err(IamError::invalid(
                "tags",
                format!("`{t}`: 1 to 64 characters of letters, digits and :._-/="),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out.sort();
    Ok(out)
}

pub fn check_password(password: &str) -> Result<(), IamError> {
    let n = password.chars().count();
    if n < 12 {
        return Err(IamError::invalid("password", "at least 12 characters"));
    }
    if password.len() > 1024 {
        return Err(IamError::invalid("password", "at most 1024 bytes"));
    }
    Ok(())
}

/// Token scopes: at most 32, each `service:action[:resource]` of
/// `a-z 0-9 : / . _ -`, with `*` only at the end (a resource prefix).
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, IamError> {
    if scopes.len() > 32 {
        return Err(IamError::invalid("scopes", "at most 32"));
    }
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        let body = s.strip_suffix('*').unwrap_or(s);
        let ok = !body.is_empty()
            && s.len() <= 128
            && body.contains(':')
            && !body.starts_with(':')
            && body.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b':' | b'/' | b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(IamError::invalid(
                "scopes",
                format!(
                    "`{s}`: service:action[:resource] of a-z 0-9 : / . _ - (`*` only at the end)"
                ),
            ));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

pub fn check_roles(account_type: AccountType, roles: &[Role]) -> Result<Vec<Role>, IamError> {
    if roles.len() > MAX_ROLES {
        return Err(IamError::invalid(
            "roles",
            format!("at most {MAX_ROLES} entries"),
        ));
    }
    if account_type == AccountType::System && !roles.is_empty() {
        return Err(IamError::invalid(
            "roles",
            "system accounts carry no roles; each service authorizes them by its own policy",
        ));
    }
    let mut r = roles.to_vec();
    r.sort();
    r.dedup();
    Ok(r)
}

// Stored records of the capabilities (the store's typed tables name them).

/// A token as tracked for listing and revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub jti: String,
    pub account_id: String,
    /// `session` (login) or `system` (issued by an admin).
    pub kind: String,
    pub description: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
    /// The account's token generation when issued: a later password change
    /// or disable makes the token revoked for every verifier.
    #[serde(default)]
    pub generation: u32,
    /// The scopes a scoped system token is limited to (empty: unscoped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// When the sign-in this token descends from happened (0 in records
    /// written before it was kept: then `issued_at`).
    #[serde(default)]
    pub auth_time: i64,
    /// The service and tags of the login, which a renewal is decided for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl TokenRecord {
    /// When the sign-in behind this token happened.
    pub fn auth_time(&self) -> i64 {
        if self.auth_time > 0 {
            self.auth_time
        } else {
            self.issued_at
        }
    }
}

/// A registered client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoClient {
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `RS256` (default) or `EdDSA`.
    #[serde(default)]
    pub id_token_signed_response_alg: String,
    /// SHA-256 of the secret, base64url. Never leaves the store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_sha256: String,
    #[serde(default)]
    pub created_at: i64,
}

fn yes() -> bool {
    true
}

impl SsoClient {
    /// The client without its secret hash, for listings.
    pub fn public(&self) -> Self {
        Self {
            secret_sha256: String::new(),
            ..self.clone()
        }
    }
}

/// A stored passkey: metadata in clear, the credential sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// base64url credential id.
    pub credential_id: String,
    pub created_at: i64,
    pub last_used: i64,
    pub counter: u32,
    /// The JSON of the webauthn-rs `Passkey`, sealed with the master key
    /// (bound to this row), base64url.
    pub(crate) sealed: String,
}
