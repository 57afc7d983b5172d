//! Unit and property tests of `jws.rs`; the signing helpers are shared
//! with the other ACME tests.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// An account key a test client signs with.
pub(crate) enum TestKey {
    Ec(EcdsaKeyPair, bool),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl TestKey {
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            TestKey::Ec(_, false) => "ES256",
            TestKey::Ec(_, true) => "ES384",
            TestKey::Rsa(_) => "RS256",
            TestKey::Ed(_) => "EdDSA",
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        match self {
            TestKey::Ec(k, p384) => {
                let p = k.public_key().as_ref();
                let l = (p.len() - 1) / 2;
                json!({"kty":"EC","crv": if *p384 {"P-384"} else {"P-256"},
                       "x": B64.encode(&p[1..=l]), "y": B64.encode(&p[l + 1..])})
            }
            TestKey::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                json!({"kty":"RSA","n":B64.encode(&c.n),"e":B64.encode(&c.e)})
            }
            TestKey::Ed(k) => {
                json!({"kty":"OKP","crv":"Ed25519","x":B64.encode(k.public_key().as_ref())})
            }
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Ec(k, _) => k.sign(&rng, msg).expect("sign").as_ref().to_vec(),
            TestKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .expect("sign");
                sig
            }
            TestKey::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }

    /// A flattened JWS over `payload` with `extra` merged into the header.
    pub(crate) fn jws(&self, header: Value, payload: &[u8]) -> Vec<u8> {
        let mut h = json!({"alg": self.alg()});
        if let (Some(o), Value::Object(extra)) = (h.as_object_mut(), header) {
            o.extend(extra);
        }
        let protected = B64.encode(h.to_string());
        let payload = B64.encode(payload);
        let sig = self.sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected":protected,"payload":payload,"signature":B64.encode(sig)})
            .to_string()
            .into_bytes()
    }
}

pub(crate) fn ec(p384: bool) -> TestKey {
    let alg = if p384 {
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
    };
    TestKey::Ec(EcdsaKeyPair::generate(alg).expect("ec key"), p384)
}

/// A P-256 key and its JWK.
pub(crate) fn es256_key() -> (TestKey, Value) {
    let k = ec(false);
    let j = k.jwk();
    (k, j)
}

pub(crate) fn jwk_of(k: &TestKey) -> Value {
    k.jwk()
}

fn all_keys() -> Vec<TestKey> {
    vec![
        ec(false),
        ec(true),
        TestKey::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa")),
        TestKey::Ed(Ed25519KeyPair::generate().expect("ed25519")),
    ]
}

fn header_with_jwk(k: &TestKey) -> Value {
    json!({"nonce":"n1","url":"https://ca.test/new-account","jwk":k.jwk()})
}

#[test]
fn every_algorithm_verifies_its_own_signature_and_refuses_a_changed_one() {
    for k in all_keys() {
        let body = k.jws(header_with_jwk(&k), br#"{"termsOfServiceAgreed":true}"#);
        let d = Decoded::parse(&body).expect("parse");
        let h = d.acme_header().expect("header");
        assert_eq!(h.nonce, "n1");
        assert_eq!(h.url, "https://ca.test/new-account");
        let KeyRef::Jwk(key) = &h.key else {
            panic!("jwk expected")
        };
        d.verify(h.alg, key).expect("verifies");
        assert_eq!(
            d.payload_json().expect("json")["termsOfServiceAgreed"],
            true
        );
        // Another payload under the same signature.
        let mut v: Value = serde_json::from_slice(&body).expect("json");
        v["payload"] = Value::String(B64.encode(b"{}"));
        let forged = Decoded::parse(v.to_string().as_bytes()).expect("parse");
        let p = forged.verify(h.alg, key).expect_err("forged");
        assert_eq!(p.kind, Kind::Malformed);
    }
}

#[test]
fn an_algorithm_must_match_its_key_type() {
    let k = ec(false);
    let key = PublicJwk::from_value(&k.jwk()).expect("jwk");
    let sig = k.sign(b"m");
    key.verify(Alg::Es256, b"m", &sig).expect("ok");
    for alg in [Alg::Es384, Alg::Rs256, Alg::EdDsa] {
        assert_eq!(
            key.verify(alg, b"m", &sig).expect_err("mismatch").kind,
            Kind::BadSignatureAlgorithm
        );
    }
}

#[test]
fn refusals_name_the_rfc_type() {
    let k = ec(false);
    let cases: Vec<(Value, Kind)> = vec![
        (
            json!({"alg":"HS256","nonce":"n","url":"u","jwk":k.jwk()}),
            Kind::BadSignatureAlgorithm,
        ),
        (
            json!({"alg":"none","nonce":"n","url":"u","jwk":k.jwk()}),
            Kind::BadSignatureAlgorithm,
        ),
        (
            json!({"alg":"ES256","url":"u","jwk":k.jwk()}),
            Kind::BadNonce,
        ),
        (
            json!({"alg":"ES256","nonce":"n","jwk":k.jwk()}),
            Kind::Malformed,
        ),
        (
            json!({"alg":"ES256","nonce":"n","url":"u"}),
            Kind::Malformed,
        ),
        (
            json!({"alg":"ES256","nonce":"n","url":"u","kid":"k","jwk":k.jwk()}),
            Kind::Malformed,
        ),
        (
            json!({"alg":"ES256","nonce":"n","url":"u","kid":7}),
            Kind::Malformed,
        ),
        (
            json!({"alg":"ES256","nonce":"n","url":"u","jwk":{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}}),
            Kind::BadPublicKey,
        ),
        (
            json!({"alg":"ES256","nonce":"n","url":"u","jwk":{"kty":"oct","k":"AA"}}),
            Kind::BadPublicKey,
        ),
    ];
    for (header, kind) in cases {
        let protected = B64.encode(header.to_string());
        let body = json!({"protected":protected,"payload":"","signature":"AA"}).to_string();
        let d = Decoded::parse(body.as_bytes()).expect("decodes");
        assert_eq!(d.acme_header().expect_err("refused").kind, kind, "{header}");
    }
}

#[test]
fn the_flattened_form_is_strict() {
    let bad: &[&str] = &[
        "",
        "[]",
        r#"{"protected":"e30","payload":""}"#,
        r#"{"protected":"e30","payload":"","signature":"","header":{}}"#,
        r#"{"payload":"","signatures":[]}"#,
        r#"{"protected":"e30=","payload":"","signature":""}"#,
        r#"{"protected":"e3+","payload":"","signature":""}"#,
        r#"{"protected":"W10","payload":"","signature":""}"#,
        r#"{"protected":"eyJjcml0IjpbXX0","payload":"","signature":""}"#,
    ];
    for b in bad {
        assert_eq!(
            Decoded::parse(b.as_bytes()).expect_err(b).kind,
            Kind::Malformed,
            "{b}"
        );
    }
    let big = vec![b' '; MAX_JWS_BYTES + 1];
    assert_eq!(Decoded::parse(&big).expect_err("big").kind, Kind::Malformed);
    let ok = Decoded::parse(br#"{"protected":"e30","payload":"","signature":""}"#).expect("ok");
    assert!(ok.is_post_as_get());
}

#[test]
fn thumbprint_matches_rfc_7638_example() {
    // RFC 7638 §3.1.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    let key = PublicJwk::from_value(&jwk).expect("jwk");
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn private_and_off_curve_keys_are_refused() {
    let k = ec(false);
    let mut j = k.jwk();
    j["d"] = json!("AAAA");
    assert_eq!(
        PublicJwk::from_value(&j).expect_err("d").kind,
        Kind::BadPublicKey
    );
    let mut j = k.jwk();
    j["y"] = json!(B64.encode([1u8; 32]));
    assert_eq!(
        PublicJwk::from_value(&j).expect_err("curve").kind,
        Kind::BadPublicKey
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any payload round-trips; flipping any signature bit fails.
    #[test]
    fn signed_payloads_verify_and_any_flipped_bit_does_not(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        bit in 0usize..512,
    ) {
        let k = ec(false);
        let body = k.jws(header_with_jwk(&k), &payload);
        let d = Decoded::parse(&body).expect("parse");
        prop_assert_eq!(&d.payload, &payload);
        let h = d.acme_header().expect("header");
        let KeyRef::Jwk(key) = &h.key else { panic!("jwk") };
        prop_assert!(d.verify(h.alg, key).is_ok());
        let mut sig = d.signature().to_vec();
        let i = bit % (sig.len() * 8);
        sig[i / 8] ^= 1 << (i % 8);
        prop_assert!(key.verify(h.alg, d.signing_input(), &sig).is_err());
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(d) = Decoded::parse(&body) {
            let _ = d.acme_header();
        }
    }
}
