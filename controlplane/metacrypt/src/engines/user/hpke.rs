//! HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305, single-shot, in base and auth mode, built from
//! aws-lc-rs primitives (X25519, HMAC-SHA256, ChaCha20-Poly1305).
//!
//! Invariant: only sequence number 0 is ever used (one message per
//! encapsulation), so the nonce is the base nonce; a message that does not
//! open yields [`Refused`] and no plaintext. Auth mode mixes the sender's
//! static key into the KEM: only the recipient's private key opens it, and
//! opening proves the sender held its private key.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// Bytes of an X25519 key and of `enc`.
pub(crate) const KEY_LEN: usize = 32;
const KEM_ID: u16 = 0x0020;
const KDF_ID: u16 = 0x0001;
const AEAD_ID: u16 = 0x0003;
const MODE_BASE: u8 = 0x00;
const MODE_AUTH: u8 = 0x02;

/// A message that does not open (wrong key, sender, info, AAD or bytes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// A fresh X25519 key pair: (private, public).
pub(crate) fn generate() -> Result<(Zeroizing<Vec<u8>>, [u8; KEY_LEN]), Refused> {
    let sk = PrivateKey::generate(&X25519).map_err(|_| Refused)?;
    key_pair(&sk)
}

fn key_pair(sk: &PrivateKey) -> Result<(Zeroizing<Vec<u8>>, [u8; KEY_LEN]), Refused> {
    let seed: aws_lc_rs::encoding::Curve25519SeedBin<'static> =
        sk.as_be_bytes().map_err(|_| Refused)?;
    let private = Zeroizing::new(seed.as_ref().to_vec());
    Ok((private, public_of(sk)?))
}

fn public_of(sk: &PrivateKey) -> Result<[u8; KEY_LEN], Refused> {
    let pk = sk.compute_public_key().map_err(|_| Refused)?;
    pk.as_ref().try_into().map_err(|_| Refused)
}

fn private(bytes: &[u8]) -> Result<PrivateKey, Refused> {
    PrivateKey::from_private_key(&X25519, bytes).map_err(|_| Refused)
}

/// The public key of a stored private key.
#[cfg(test)]
pub(crate) fn public_key(sk: &[u8]) -> Result<[u8; KEY_LEN], Refused> {
    public_of(&private(sk)?)
}

fn dh(sk: &PrivateKey, pk: &[u8]) -> Result<Zeroizing<Vec<u8>>, Refused> {
    agreement::agree(sk, UnparsedPublicKey::new(&X25519, pk), Refused, |s| {
        Ok(Zeroizing::new(s.to_vec()))
    })
}

fn extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    Zeroizing::new(hmac::sign(&key, ikm).as_ref().to_vec())
}

fn expand(prk: &[u8], info: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, prk);
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut block: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&block);
        ctx.update(info);
        ctx.update(&[counter]);
        block = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::new());
    m.extend_from_slice(b"HPKE-v1");
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(ikm);
    extract(salt, &m)
}

fn labeled_expand(
    suite: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: u16,
) -> Zeroizing<Vec<u8>> {
    let mut m = Vec::new();
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(b"HPKE-v1");
    m.extend_from_slice(suite);
    m.extend_from_slice(label);
    m.extend_from_slice(info);
    expand(prk, &m, usize::from(len))
}

fn kem_suite() -> Vec<u8> {
    let mut s = b"KEM".to_vec();
    s.extend_from_slice(&KEM_ID.to_be_bytes());
    s
}

fn hpke_suite() -> Vec<u8> {
    let mut s = b"HPKE".to_vec();
    for id in [KEM_ID, KDF_ID, AEAD_ID] {
        s.extend_from_slice(&id.to_be_bytes());
    }
    s
}

fn shared_secret(dh: &[u8], kem_context: &[u8]) -> Zeroizing<Vec<u8>> {
    let suite = kem_suite();
    let prk = labeled_extract(&suite, b"", b"eae_prk", dh);
    labeled_expand(&suite, &prk, b"shared_secret", kem_context, 32)
}

/// The AEAD key and base nonce of the key schedule (no PSK).
fn schedule(mode: u8, shared: &[u8], info: &[u8]) -> Result<(LessSafeKey, [u8; 12]), Refused> {
    let suite = hpke_suite();
    let psk_id_hash = labeled_extract(&suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(&suite, b"", b"info_hash", info);
    let mut ctx = vec![mode];
    ctx.extend_from_slice(&psk_id_hash);
    ctx.extend_from_slice(&info_hash);
    let secret = labeled_extract(&suite, shared, b"secret", b"");
    let key = labeled_expand(&suite, &secret, b"key", &ctx, 32);
    let nonce = labeled_expand(&suite, &secret, b"base_nonce", &ctx, 12);
    let key = UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| Refused)?;
    let nonce: [u8; 12] = nonce.as_slice().try_into().map_err(|_| Refused)?;
    Ok((LessSafeKey::new(key), nonce))
}

/// Auth-mode single-shot seal from `sender_sk` to `recipient_pk`:
/// `enc(32) ‖ ciphertext ‖ tag(16)`.
pub(crate) fn seal_auth(
    recipient_pk: &[u8],
    sender_sk: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Refused> {
    let eph = PrivateKey::generate(&X25519).map_err(|_| Refused)?;
    seal_with(&eph, recipient_pk, Some(sender_sk), info, aad, plaintext)
}

fn seal_with(
    eph: &PrivateKey,
    recipient_pk: &[u8],
    sender_sk: Option<&[u8]>,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Refused> {
    let enc = public_of(eph)?;
    let mut secret = dh(eph, recipient_pk)?;
    let mut kem_context = enc.to_vec();
    kem_context.extend_from_slice(recipient_pk);
    let mode = match sender_sk {
        Some(s) => {
            let s = private(s)?;
            secret.extend_from_slice(&dh(&s, recipient_pk)?);
            kem_context.extend_from_slice(&public_of(&s)?);
            MODE_AUTH
        }
        None => MODE_BASE,
    };
    let shared = shared_secret(&secret, &kem_context);
    let (key, nonce) = schedule(mode, &shared, info)?;
    let mut out = enc.to_vec();
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| Refused)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens what [`seal_auth`] made (`sender_pk` is `None` in base mode).
pub(crate) fn open(
    recipient_sk: &[u8],
    sender_pk: Option<&[u8]>,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Refused> {
    if sealed.len() < KEY_LEN + 16 {
        return Err(Refused);
    }
    let (enc, ct) = sealed.split_at(KEY_LEN);
    let sk = private(recipient_sk)?;
    let mut secret = dh(&sk, enc)?;
    let mut kem_context = enc.to_vec();
    kem_context.extend_from_slice(&public_of(&sk)?);
    let mode = match sender_pk {
        Some(pk) => {
            secret.extend_from_slice(&dh(&sk, pk)?);
            kem_context.extend_from_slice(pk);
            MODE_AUTH
        }
        None => MODE_BASE,
    };
    let shared = shared_secret(&secret, &kem_context);
    let (key, nonce) = schedule(mode, &shared, info)?;
    let mut body = Zeroizing::new(ct.to_vec());
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| Refused)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Known answer from an independent implementation (OpenSSL's HPKE via
    /// Python `cryptography` 48, `Suite(X25519, HKDF_SHA256,
    /// CHACHA20_POLY1305).encrypt(b"hello hpke", pk, info=b"mc-test-info")`
    /// to the private key 00 01 … 1f): base mode shares every step with
    /// auth mode but the second DH and the mode byte.
    #[test]
    fn opens_a_base_mode_message_made_by_openssl() {
        let sk: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            public_key(&sk).expect("pk").to_vec(),
            hex("8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f")
        );
        let sealed = hex(
            "f7af061e86b462b43ff43127713ab9398edbd94c0cb944bb668a38f35f7eee1c15b2c5ea13e6476b9cf340445f022a124fe1b32f8e39360274ce",
        );
        let plain = open(&sk, None, b"mc-test-info", b"", &sealed).expect("opens");
        assert_eq!(plain.as_slice(), b"hello hpke");
        assert_eq!(open(&sk, None, b"other info", b"", &sealed), Err(Refused));
        let mut bent = sealed.clone();
        bent[40] ^= 1;
        assert_eq!(open(&sk, None, b"mc-test-info", b"", &bent), Err(Refused));
    }

    /// RFC 5869 test case 1 (HKDF-SHA256), for the hand-written expand.
    #[test]
    fn hkdf_matches_rfc_5869_case_1() {
        let prk = extract(&hex("000102030405060708090a0b0c"), &[0x0b; 22]);
        assert_eq!(
            prk.to_vec(),
            hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
        let okm = expand(&prk, &hex("f0f1f2f3f4f5f6f7f8f9"), 42);
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    #[test]
    fn auth_mode_opens_only_for_the_recipient_from_the_named_sender() {
        let (a_sk, a_pk) = generate().expect("a");
        let (b_sk, b_pk) = generate().expect("b");
        let (c_sk, c_pk) = generate().expect("c");
        let sealed = seal_auth(&b_pk, &a_sk, b"info", b"aad", b"for bob").expect("seal");
        let plain = open(&b_sk, Some(&a_pk), b"info", b"aad", &sealed).expect("bob opens");
        assert_eq!(plain.as_slice(), b"for bob");
        // The sender cannot open its own message; nor can a third party.
        assert_eq!(
            open(&a_sk, Some(&a_pk), b"info", b"aad", &sealed),
            Err(Refused)
        );
        assert_eq!(
            open(&c_sk, Some(&a_pk), b"info", b"aad", &sealed),
            Err(Refused)
        );
        // Another claimed sender, info or AAD: refused.
        assert_eq!(
            open(&b_sk, Some(&c_pk), b"info", b"aad", &sealed),
            Err(Refused)
        );
        assert_eq!(
            open(&b_sk, Some(&a_pk), b"inf0", b"aad", &sealed),
            Err(Refused)
        );
        assert_eq!(
            open(&b_sk, Some(&a_pk), b"info", b"aaD", &sealed),
            Err(Refused)
        );
        assert_eq!(open(&b_sk, None, b"info", b"aad", &sealed), Err(Refused));
        assert_eq!(
            open(&b_sk, Some(&a_pk), b"info", b"aad", &sealed[..40]),
            Err(Refused)
        );
        // Each message has a fresh ephemeral key.
        let again = seal_auth(&b_pk, &a_sk, b"info", b"aad", b"for bob").expect("seal");
        assert_ne!(sealed, again);
    }
}
