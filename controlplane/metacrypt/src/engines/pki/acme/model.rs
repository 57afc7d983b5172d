//! ACME state rows (one sealed table, `acme`, keyed mount id ‖ kind ‖ id)
//! and their RFC 8555 JSON views.
//!
//! Invariants: every row is sealed under the mount's DEK ring; a row's
//! `role` is the role whose directory created it, and a request through
//! another role's directory never sees it; ids are 16 random bytes,
//! base64url (22 characters).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::problem::{Kind, Problem};

/// Row kinds, the byte after the mount id.
pub(crate) mod kind {
    pub(crate) const EAB: u8 = b'e';
    pub(crate) const ACCOUNT: u8 = b'a';
    /// thumbprint → account id: one key, one account.
    pub(crate) const KEY: u8 = b'k';
    pub(crate) const ORDER: u8 = b'o';
    pub(crate) const AUTHZ: u8 = b'z';
}

/// A fresh id.
pub(crate) fn new_id() -> Result<String, Problem> {
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw)
        .map_err(|_| Problem::new(Kind::ServerInternal, "no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// An id as given in a URL: 22 base64url characters, else `None`.
pub(crate) fn valid_id(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An external account binding key, created by an MCIAS caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EabKey {
    pub role: String,
    /// The HMAC key, base64url.
    pub hmac: String,
    pub mcias_subject: String,
    pub mcias_name: String,
    pub created: i64,
    pub expires: i64,
    /// The account it bound, once used.
    pub account: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub id: String,
    pub role: String,
    /// The RFC 7638 canonical JWK.
    pub jwk: Value,
    pub thumbprint: String,
    /// `valid` or `deactivated`.
    pub status: String,
    pub contact: Vec<String>,
    pub eab: String,
    pub mcias_subject: String,
    pub mcias_name: String,
    pub created: i64,
}

impl Account {
    pub(crate) fn view(&self, orders_url: &str) -> Value {
        json!({
            "status": self.status,
            "contact": self.contact,
            "termsOfServiceAgreed": true,
            "orders": orders_url,
        })
    }
}

/// An identifier: `dns` or `ip` (RFC 8738).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub id: String,
    pub account: String,
    pub role: String,
    /// pending → ready → processing → valid, or invalid.
    pub status: String,
    pub identifiers: Vec<Identifier>,
    pub authzs: Vec<String>,
    pub expires: i64,
    pub error: Option<Value>,
    /// The certificate's serial (hex) once issued.
    pub serial: Option<String>,
    /// The leaf then the issuer's chain, PEM.
    pub chain: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Challenge {
    /// `http-01`, `tls-alpn-01` or `dns-01`.
    #[serde(rename = "type")]
    pub kind: String,
    pub token: String,
    /// pending → processing → valid | invalid.
    pub status: String,
    pub validated: Option<i64>,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Authz {
    pub id: String,
    pub account: String,
    pub order: String,
    pub identifier: Identifier,
    /// pending → valid | invalid | deactivated.
    pub status: String,
    pub expires: i64,
    pub wildcard: bool,
    pub challenges: Vec<Challenge>,
}

/// RFC 3339 UTC, as ACME's `expires` and `validated` are.
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Challenge {
    pub(crate) fn view(&self, url: &str) -> Value {
        let mut v = json!({
            "type": self.kind,
            "url": url,
            "token": self.token,
            "status": self.status,
        });
        if let Some(t) = self.validated {
            v["validated"] = Value::String(rfc3339(t));
        }
        if let Some(e) = &self.error {
            v["error"] = e.clone();
        }
        v
    }
}

impl Problem {
    /// The problem as stored in an order or challenge's `error`.
    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
