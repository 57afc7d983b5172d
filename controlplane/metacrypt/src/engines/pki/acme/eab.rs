//! External account binding (RFC 8555 §7.3.4): the `externalAccountBinding`
//! member of new-account is a flattened JWS, HS256 with the EAB key id as
//! `kid`, the new-account URL as `url`, no `nonce`, over the account's JWK.
//! EAB keys are created by an MCIAS caller (docs/design/acme.md §EAB); this
//! module only checks a binding against a key.
//!
//! Invariants: the MAC is compared in constant time (aws-lc-rs `hmac::verify`);
//! the payload must be the same key as the outer JWS's `jwk` (compared by
//! RFC 7638 thumbprint, so member order and spelling do not matter).

use aws_lc_rs::hmac;
use serde_json::Value;

use super::jws::{Decoded, PublicJwk};
use super::problem::{Kind, Problem};

/// The shortest HMAC key accepted (RFC 8555 asks for none; HS256 wants 32).
pub const MIN_EAB_KEY: usize = 32;

/// Decodes a stored EAB key (base64url).
pub fn key_bytes(b64: &str) -> Result<Vec<u8>, Problem> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Problem::new(Kind::ServerInternal, "stored EAB key"))
}

/// A decoded binding, its MAC not yet checked.
#[derive(Debug)]
pub struct Binding {
    /// The EAB key id, to look the key up by.
    pub kid: String,
    jws: Decoded,
}

/// Decodes the binding and checks everything but the MAC: `alg` HS256, no
/// nonce, `url` equal to the new-account URL, the payload equal to
/// `account_key`.
pub fn decode(v: &Value, url: &str, account_key: &PublicJwk) -> Result<Binding, Problem> {
    let jws = Decoded::from_value(v)?;
    if jws.header_str("alg")? != Some("HS256") {
        return Err(Problem::malformed("externalAccountBinding must use HS256"));
    }
    if jws.header.contains_key("nonce") || jws.header.contains_key("jwk") {
        return Err(Problem::malformed(
            "externalAccountBinding carries no nonce and no jwk",
        ));
    }
    if jws.header_str("url")? != Some(url) {
        return Err(Problem::unauthorized(
            "externalAccountBinding url is not the new-account URL",
        ));
    }
    let kid = jws
        .header_str("kid")?
        .ok_or_else(|| Problem::malformed("externalAccountBinding has no kid"))?
        .to_owned();
    let inner = PublicJwk::from_value(&jws.payload_json()?)?;
    if inner.thumbprint() != account_key.thumbprint() {
        return Err(Problem::unauthorized(
            "externalAccountBinding is over another key",
        ));
    }
    Ok(Binding { kid, jws })
}

impl Binding {
    /// Checks the MAC with the EAB key `hmac_key`.
    pub fn verify(&self, hmac_key: &[u8]) -> Result<(), Problem> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, hmac_key);
        hmac::verify(&key, self.jws.signing_input(), self.jws.signature())
            .map_err(|_| Problem::new(Kind::Unauthorized, "externalAccountBinding MAC is wrong"))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    use super::*;
    use crate::engines::pki::acme::jws::tests::{es256_key, jwk_of};

    fn binding(kid: &str, url: &str, jwk: &Value, key: &[u8]) -> Value {
        let protected = B64.encode(json!({"alg":"HS256","kid":kid,"url":url}).to_string());
        let payload = B64.encode(jwk.to_string());
        let mac = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            format!("{protected}.{payload}").as_bytes(),
        );
        json!({"protected":protected,"payload":payload,"signature":B64.encode(mac.as_ref())})
    }

    #[test]
    fn a_binding_verifies_only_with_its_key_url_and_account_key() {
        let (_, jwk) = es256_key();
        let account = PublicJwk::from_value(&jwk).expect("jwk");
        let url = "https://ca.test/v1/acme/pki/web/new-account";
        let key = [7u8; 32];
        let b = binding("eab_1", url, &jwk, &key);
        let d = decode(&b, url, &account).expect("decode");
        assert_eq!(d.kid, "eab_1");
        d.verify(&key).expect("mac");
        assert_eq!(
            d.verify(&[8u8; 32]).expect_err("wrong key").kind,
            Kind::Unauthorized
        );
        let other = decode(&b, "https://ca.test/other", &account).expect_err("url");
        assert_eq!(other.kind, Kind::Unauthorized);
        let (_, jwk2) = es256_key();
        let acc2 = PublicJwk::from_value(&jwk2).expect("jwk");
        assert_eq!(
            decode(&b, url, &acc2).expect_err("key").kind,
            Kind::Unauthorized
        );
        let _ = jwk_of;
    }
}
