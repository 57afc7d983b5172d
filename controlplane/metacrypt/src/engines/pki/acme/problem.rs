//! RFC 7807 problem documents with RFC 8555 §6.7's error types, as every
//! ACME refusal is answered (`application/problem+json`).
//!
//! Invariant: the `type` is always `urn:ietf:params:acme:error:` plus one
//! of the RFC's names, and the HTTP status is the one this file assigns to
//! that type, so adapters never pick a status on their own.

use serde::Serialize;

/// The media type of a problem document.
pub const CONTENT_TYPE: &str = "application/problem+json";

const PREFIX: &str = "urn:ietf:params:acme:error:";

/// RFC 8555 §6.7 error types this server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
}

impl Kind {
    /// The RFC's name, the suffix of the `type` URN.
    pub fn name(self) -> &'static str {
        match self {
            Kind::AccountDoesNotExist => "accountDoesNotExist",
            Kind::AlreadyRevoked => "alreadyRevoked",
            Kind::BadCsr => "badCSR",
            Kind::BadNonce => "badNonce",
            Kind::BadPublicKey => "badPublicKey",
            Kind::BadRevocationReason => "badRevocationReason",
            Kind::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Kind::Connection => "connection",
            Kind::Dns => "dns",
            Kind::ExternalAccountRequired => "externalAccountRequired",
            Kind::IncorrectResponse => "incorrectResponse",
            Kind::Malformed => "malformed",
            Kind::OrderNotReady => "orderNotReady",
            Kind::RateLimited => "rateLimited",
            Kind::RejectedIdentifier => "rejectedIdentifier",
            Kind::ServerInternal => "serverInternal",
            Kind::Tls => "tls",
            Kind::Unauthorized => "unauthorized",
        }
    }

    /// The HTTP status the document is served with.
    pub fn status(self) -> u16 {
        match self {
            Kind::Unauthorized | Kind::OrderNotReady => 403,
            Kind::AccountDoesNotExist => 400,
            Kind::RateLimited => 429,
            Kind::ServerInternal => 500,
            _ => 400,
        }
    }
}

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind_urn: String,
    pub detail: String,
    pub status: u16,
    #[serde(skip)]
    pub kind: Kind,
    /// A `Location` header to send with it (409 on key-change).
    #[serde(skip)]
    pub location: Option<String>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind_urn: format!("{PREFIX}{}", kind.name()),
            detail: detail.into(),
            status: kind.status(),
            kind,
            location: None,
        }
    }

    /// The same problem served with another status (503 while sealed).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same problem with a `Location` header.
    pub fn with_location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(Kind::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_with_the_rfc_urn_and_status() {
        let p = Problem::new(Kind::BadNonce, "nonce was used");
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(v["type"], "urn:ietf:params:acme:error:badNonce");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "nonce was used");
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        assert_eq!(Problem::unauthorized("x").status, 403);
        assert_eq!(
            Problem::new(Kind::BadCsr, "x").kind_urn,
            format!("{PREFIX}badCSR")
        );
        assert_eq!(Problem::new(Kind::RateLimited, "x").status, 429);
    }
}
