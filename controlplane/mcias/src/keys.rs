//! Token signing keys: Ed25519, rotated, private halves sealed at rest.
//!
//! A 32-byte master key lives in its own 0600 file beside the store
//! (`<data_dir>/mcias/master.key`); each signing key's PKCS#8 is stored in
//! the `keys` table sealed with AES-256-GCM under it, so a copy of the
//! database alone (a snapshot, a backup) does not reveal signing keys.
//! Rotation adds a new active key; older keys keep verifying until every
//! token they signed has expired, then they are dropped from the JWKS.

use std::collections::HashMap;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mc_kit::seal::{KeyFileSealer, Sealer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::IamError;

/// The table signing keys are stored (and sealed) in.
const KEYS_TABLE: &str = "keys";

/// What a token says. `typ` and `gen` let validation refuse tokens of
/// disabled accounts and tokens older than a password change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub typ: String,
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub r#gen: u32,
    /// What a scoped token is limited to (absent: the account's full rights).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// When the sign-in this token descends from happened (OIDC's
    /// `auth_time`): kept across renewals, which stop at `max_session_age`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auth_time: i64,
}

fn is_zero(t: &i64) -> bool {
    *t == 0
}

/// A stored key record: an Ed25519 token key (`alg` EdDSA) or the RSA-2048
/// key that signs OIDC id_tokens (`alg` RS256, the algorithm OIDC mandates).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    #[serde(default = "eddsa")]
    pub alg: String,
    /// The PKCS#8, sealed with the master key (see [`MasterKey`]), base64url.
    pub sealed_pkcs8: String,
    /// EdDSA: the raw 32-byte public key; RS256: the modulus `n`; base64url.
    pub public: String,
    /// RS256: the public exponent `e`, base64url.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
    pub created_at: i64,
    /// Tokens signed by it expire by then; after it, the key is dropped.
    pub verify_until: i64,
    pub active: bool,
}

fn eddsa() -> String {
    EDDSA.to_owned()
}

pub const EDDSA: &str = "EdDSA";
pub const RS256: &str = "RS256";

/// The master key: the kit's [`KeyFileSealer`] over `mcias/master.key`
/// (which `mcd snapshot` carries). Values are sealed bound to their row
/// (`table ‖ 0 ‖ key`); values sealed before that format (nonce ‖ ciphertext
/// ‖ tag, with the row's own id as AAD) still open, and are written in the
/// new format when next sealed.
pub struct MasterKey(KeyFileSealer);

impl MasterKey {
    /// Reads the 0600 master key file, creating it on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, IamError> {
        KeyFileSealer::load_or_create(path)
            .map(Self)
            .map_err(IamError::internal)
    }

    /// Seals `plain` for row `key` of `table`.
    pub(crate) fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, IamError> {
        self.0.seal(table, key, plain).map_err(IamError::internal)
    }

    /// Opens the sealed value of row `key` of `table`; a value from before
    /// the kit's format opens with the AAD it was sealed with (`legacy_aad`).
    pub(crate) fn open(
        &self,
        table: &str,
        key: &[u8],
        legacy_aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IamError> {
        self.0
            .open_legacy(table, key, legacy_aad, sealed)
            .map_err(IamError::internal)
    }

    /// A signing key's PKCS#8 (sealed in `keys`, row and legacy AAD: its kid).
    fn open_key(&self, r: &KeyRecord) -> Result<Zeroizing<Vec<u8>>, IamError> {
        let sealed = B64.decode(&r.sealed_pkcs8).map_err(IamError::internal)?;
        self.0
            .open_legacy(KEYS_TABLE, r.kid.as_bytes(), r.kid.as_bytes(), &sealed)
            .map_err(|_| IamError::internal("a signing key does not open with the master key"))
    }
}

struct Verifying {
    key: DecodingKey,
    public: String,
    verify_until: i64,
}

/// The active id_token RSA key.
struct RsaSigner {
    kid: String,
    pair: aws_lc_rs::rsa::KeyPair,
}

/// The loaded keys: one active Ed25519 signer, every key still verifying,
/// and the RSA id_token signer with every RSA key still published.
pub struct KeyRing {
    active_kid: String,
    signer: EncodingKey,
    verifiers: HashMap<String, Verifying>,
    rsa: Option<RsaSigner>,
    /// Published RSA keys: kid → (n, e, verify_until).
    rsa_public: HashMap<String, (String, String, i64)>,
}

impl KeyRing {
    /// A new key record (sealed) to store and activate.
    pub fn generate(master: &MasterKey, now: i64) -> Result<KeyRecord, IamError> {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(IamError::internal)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(IamError::internal)?;
        let public = B64.encode(pair.public_key().as_ref());
        let kid = public.get(..16).unwrap_or(&public).to_owned();
        let sealed = master.seal(KEYS_TABLE, kid.as_bytes(), pkcs8.as_ref())?;
        Ok(KeyRecord {
            kid,
            alg: eddsa(),
            sealed_pkcs8: B64.encode(sealed),
            public,
            e: String::new(),
            created_at: now,
            verify_until: i64::MAX,
            active: true,
        })
    }

    /// A new RSA-2048 id_token key record (sealed).
    pub fn generate_rsa(master: &MasterKey, now: i64) -> Result<KeyRecord, IamError> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair as RsaPair, KeySize, PublicKeyComponents};
        let pair = RsaPair::generate(KeySize::Rsa2048).map_err(IamError::internal)?;
        let pkcs8 = pair.as_der().map_err(IamError::internal)?;
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let n = B64.encode(&components.n);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, n.as_bytes());
        let kid = format!("rsa-{}", B64.encode(&digest.as_ref()[..12]));
        let sealed = master.seal(KEYS_TABLE, kid.as_bytes(), pkcs8.as_ref())?;
        Ok(KeyRecord {
            kid,
            alg: RS256.to_owned(),
            sealed_pkcs8: B64.encode(sealed),
            public: n,
            e: B64.encode(&components.e),
            created_at: now,
            verify_until: i64::MAX,
            active: true,
        })
    }

    pub fn load(master: &MasterKey, records: &[KeyRecord], now: i64) -> Result<Self, IamError> {
        let (rsa_records, records): (Vec<&KeyRecord>, Vec<&KeyRecord>) =
            records.iter().partition(|r| r.alg == RS256);
        let rsa = match rsa_records
            .iter()
            .filter(|r| r.active)
            .max_by_key(|r| r.created_at)
        {
            Some(r) => {
                let pkcs8 = master.open_key(r)?;
                let pair =
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).map_err(IamError::internal)?;
                Some(RsaSigner {
                    kid: r.kid.clone(),
                    pair,
                })
            }
            None => None,
        };
        let rsa_public = rsa_records
            .iter()
            .filter(|r| r.verify_until > now)
            .map(|r| {
                (
                    r.kid.clone(),
                    (r.public.clone(), r.e.clone(), r.verify_until),
                )
            })
            .collect();
        let active = records
            .iter()
            .filter(|r| r.active)
            .max_by_key(|r| r.created_at)
            .ok_or_else(|| IamError::internal("no active signing key"))?;
        let pkcs8 = master.open_key(active)?;
        let signer = EncodingKey::from_ed_der(&pkcs8);
        let mut verifiers = HashMap::new();
        for r in records.iter().filter(|r| r.verify_until > now) {
            let raw = B64.decode(&r.public).map_err(IamError::internal)?;
            verifiers.insert(
                r.kid.clone(),
                Verifying {
                    key: DecodingKey::from_ed_der(&raw),
                    public: r.public.clone(),
                    verify_until: r.verify_until,
                },
            );
        }
        Ok(Self {
            active_kid: active.kid.clone(),
            signer,
            verifiers,
            rsa,
            rsa_public,
        })
    }

    /// Signs arbitrary claims (an OIDC id_token) with the active key of `alg`.
    pub fn sign_as<T: Serialize>(&self, alg: &str, claims: &T) -> Result<String, IamError> {
        if alg == EDDSA {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.active_kid.clone());
            header.typ = Some("JWT".to_owned());
            return jsonwebtoken::encode(&header, claims, &self.signer).map_err(IamError::internal);
        }
        let rsa = self
            .rsa
            .as_ref()
            .ok_or_else(|| IamError::internal("no active RS256 key"))?;
        let header = serde_json::json!({"alg": RS256, "typ": "JWT", "kid": rsa.kid});
        let payload = serde_json::to_vec(claims).map_err(IamError::internal)?;
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(payload));
        let mut sig = vec![0_u8; rsa.pair.public_modulus_len()];
        rsa.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(IamError::internal)?;
        Ok(format!("{input}.{}", B64.encode(sig)))
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, IamError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active_kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.signer).map_err(IamError::internal)
    }

    /// Checks signature (EdDSA only, known `kid`), `iss`, `aud` and `exp`.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<Claims, String> {
        self.verify_aud(token, issuer, |aud| aud == audience)
    }

    /// [`Self::verify`] with any audience `accept` agrees to (SSO access
    /// tokens carry the client id as their audience).
    pub fn verify_aud(
        &self,
        token: &str,
        issuer: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Claims, String> {
        let fixed = |e: jsonwebtoken::errors::Error| match mc_service::auth::token_error(&e) {
            mc_service::auth::AuthError::Invalid(m) => m,
            other => other.to_string(),
        };
        let header = jsonwebtoken::decode_header(token).map_err(fixed)?;
        if header.alg != Algorithm::EdDSA {
            return Err("unexpected algorithm".to_owned());
        }
        let kid = header.kid.ok_or("no key id")?;
        let v = self.verifiers.get(&kid).ok_or("unknown key id")?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &v.key, &validation)
            .map(|d| d.claims)
            .map_err(fixed)?;
        if !accept(&claims.aud) {
            return Err("wrong audience".to_owned());
        }
        Ok(claims)
    }

    /// The JWKS document: every key that still verifies.
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<_> = self
            .verifiers
            .iter()
            .map(|(kid, v)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": v.public, "exp": v.verify_until,
                })
            })
            .collect();
        keys.extend(self.rsa_public.iter().map(|(kid, (n, e, until))| {
            serde_json::json!({
                "kty": "RSA", "alg": RS256, "use": "sig", "kid": kid, "n": n, "e": e, "exp": until,
            })
        }));
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        serde_json::json!({ "keys": keys })
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "id".into(),
            name: "alice".into(),
            typ: "human".into(),
            roles: vec!["user".into()],
            iss: "https://iam.test".into(),
            aud: "metacircular".into(),
            iat: 0,
            exp,
            jti: "j1".into(),
            r#gen: 0,
            scopes: vec![],
            auth_time: 0,
        }
    }

    #[test]
    fn id_tokens_sign_with_rs256_or_eddsa_and_verify_from_the_jwks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::load_or_create(&dir.path().join("master.key")).expect("master");
        let now = 1_800_000_000;
        let ed = KeyRing::generate(&master, now).expect("ed");
        let rsa = KeyRing::generate_rsa(&master, now).expect("rsa");
        assert_eq!((rsa.alg.as_str(), rsa.e.as_str()), (RS256, "AQAB"));
        let ring = KeyRing::load(&master, &[ed, rsa.clone()], now).expect("load");
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0]["kid"], keys[1]["kid"]);
        let rsa_jwk = keys.iter().find(|k| k["kty"] == "RSA").expect("rsa jwk");
        let claims = serde_json::json!({"sub": "s", "aud": "app", "exp": 4_000_000_000_i64});
        let token = ring.sign_as(RS256, &claims).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), rsa_jwk["kid"].as_str());
        let key = DecodingKey::from_rsa_components(
            rsa_jwk["n"].as_str().expect("n"),
            rsa_jwk["e"].as_str().expect("e"),
        )
        .expect("rsa key");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["app"]);
        let got = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).expect("verifies");
        assert_eq!(got.claims["sub"], "s");
        // EdDSA id_tokens come from the Ed25519 key.
        let ed_token = ring.sign_as(EDDSA, &claims).expect("sign");
        assert_eq!(
            jsonwebtoken::decode_header(&ed_token).expect("h").alg,
            Algorithm::EdDSA
        );
        // The RSA key is sealed like the others: another master key cannot open it.
        let other = MasterKey::load_or_create(&dir.path().join("other.key")).expect("other");
        let ed2 = KeyRing::generate(&other, now).expect("ed");
        assert!(KeyRing::load(&other, &[ed2, rsa], now).is_err());
    }

    use std::os::unix::fs::PermissionsExt;

    fn pkcs8_of(master: &MasterKey, r: &KeyRecord) -> Vec<u8> {
        master.open_key(r).expect("opens").to_vec()
    }

    /// How MCIAS sealed values before the kit's format.
    fn legacy_seal(key: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("key"));
        let nonce = [7_u8; NONCE_LEN];
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .expect("seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    #[test]
    fn sign_verify_rotate_and_seal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = MasterKey::load_or_create(&dir.path().join("master.key")).expect("master");
        let now = 1_800_000_000;
        let mut k1 = KeyRing::generate(&master, now).expect("k1");
        let ring = KeyRing::load(&master, std::slice::from_ref(&k1), now).expect("load");
        let exp = 4_000_000_000;
        let t1 = ring.sign(&claims(exp)).expect("sign");
        assert_eq!(
            ring.verify(&t1, "https://iam.test", "metacircular")
                .expect("ok")
                .name,
            "alice"
        );
        assert!(ring.verify(&t1, "https://other", "metacircular").is_err());
        assert!(ring.verify(&t1, "https://iam.test", "other").is_err());
        let mut tampered = t1.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert!(
            ring.verify(&tampered, "https://iam.test", "metacircular")
                .is_err()
        );
        assert!(
            ring.verify(
                &ring.sign(&claims(1)).expect("sign"),
                "https://iam.test",
                "metacircular"
            )
            .is_err(),
            "expired"
        );

        // Rotation: the new key signs, the old one still verifies its tokens.
        k1.active = false;
        k1.verify_until = exp + 1;
        let k2 = KeyRing::generate(&master, now + 1).expect("k2");
        let ring2 = KeyRing::load(&master, &[k1.clone(), k2.clone()], now + 2).expect("load");
        assert_eq!(ring2.active_kid(), k2.kid);
        assert!(
            ring2
                .verify(&t1, "https://iam.test", "metacircular")
                .is_ok()
        );
        assert_eq!(ring2.jwks()["keys"].as_array().map(Vec::len), Some(2));
        // Past its verify_until the old key is gone.
        let ring3 = KeyRing::load(&master, &[k1.clone(), k2], exp + 2).expect("load");
        assert!(
            ring3
                .verify(&t1, "https://iam.test", "metacircular")
                .is_err()
        );

        // The sealed key does not open under another master key.
        let other = MasterKey::load_or_create(&dir.path().join("other.key")).expect("other");
        assert!(
            KeyRing::load(
                &other,
                &[KeyRecord {
                    active: true,
                    ..k1.clone()
                }],
                now
            )
            .is_err()
        );
        // A key sealed before the kit's format (nonce ‖ ciphertext ‖ tag,
        // AAD = kid) still opens, and signs what the new one verifies.
        let raw = std::fs::read(dir.path().join("master.key")).expect("key file");
        let legacy = legacy_seal(&raw, k1.kid.as_bytes(), &pkcs8_of(&master, &k1));
        let old = KeyRecord {
            active: true,
            verify_until: i64::MAX,
            sealed_pkcs8: B64.encode(legacy),
            ..k1.clone()
        };
        let ring4 = KeyRing::load(&master, std::slice::from_ref(&old), now).expect("legacy opens");
        let t4 = ring4.sign(&claims(exp)).expect("sign");
        assert!(ring.verify(&t4, "https://iam.test", "metacircular").is_ok());
        // New values are in the kit's format, bound to their row.
        let fresh = B64.decode(&k1.sealed_pkcs8).expect("b64");
        assert!(fresh.starts_with(b"MCS1"));
        assert!(
            master
                .open(KEYS_TABLE, b"another kid", b"x", &fresh)
                .is_err()
        );
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
