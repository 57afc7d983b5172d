//! Unit tests of the transit core: per operation and key type, known-answer
//! vectors (GCM spec, XChaCha draft, RFC 5869, RFC 4231, RFC 8032, RFC 6979),
//! independent verifiers (aws-lc-rs for RustCrypto's ECDSA, openssl for RSA
//! and exports), tamper cases and batches.

mod crypt;
mod keys;
mod sign;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

pub(super) const NOW: u64 = 1_700_000_000;

pub(super) fn state(kind: &str) -> KeyState {
    KeyState::create(
        "k",
        &CreateKey {
            kind: Some(kind.into()),
            ..Default::default()
        },
        NOW,
    )
    .unwrap()
}

pub(super) fn key(kind: &str) -> TransitKey {
    TransitKey::load(state(kind)).unwrap()
}

pub(super) fn derived(kind: &str) -> TransitKey {
    let req = CreateKey {
        kind: Some(kind.into()),
        derived: Some(true),
        ..Default::default()
    };
    TransitKey::load(KeyState::create("k", &req, NOW).unwrap()).unwrap()
}

pub(super) fn b64(x: &[u8]) -> Input {
    Input::text(STANDARD.encode(x))
}

pub(super) fn unb64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap()
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn enc(k: &TransitKey, pt: &[u8]) -> EncryptOut {
    k.encrypt(&EncryptItem {
        plaintext: Some(b64(pt)),
        ..Default::default()
    })
    .unwrap()
}

pub(super) fn dec(k: &TransitKey, ct: &str) -> Result<Vec<u8>, TransitError> {
    k.decrypt(&DecryptItem {
        ciphertext: Some(ct.into()),
        ..Default::default()
    })
    .map(|o| o.plaintext.to_vec())
}

/// A key of `kind` whose version 1 has exactly `material`.
pub(super) fn with_material(kind: &str, material: &[u8]) -> TransitKey {
    let mut s = state(kind);
    if let Some(v) = s.versions.get_mut(&1) {
        v.material = zeroize::Zeroizing::new(material.to_vec());
    }
    TransitKey::load(s).unwrap()
}
