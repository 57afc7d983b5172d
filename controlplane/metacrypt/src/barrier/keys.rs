//! Key material and the wraps of the key hierarchy:
//! unseal material → slot KWK → root key → MEK → DEK(mount, version).
//!
//! Every key is 256-bit and lives in a [`Key`] (zeroized on drop); every
//! wrap is AES-256-GCM with a random 96-bit nonce and an AAD naming what is
//! wrapped ([`aad_slot`], [`aad_mek`], [`aad_dek`]), stored as base64 of
//! `nonce ‖ ciphertext ‖ tag`. The passphrase KWK is Argon2id.
//!
//! Invariant: no key byte leaves this module except inside a [`Key`], and a
//! wrapped key unwraps only under the key and AAD it was wrapped with.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

pub(crate) const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("no randomness available")]
    Random,
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("a wrapped key does not open")]
    Unwrap,
    #[error("a wrapped key is malformed")]
    Malformed,
}

/// A 256-bit key, zeroized on drop.
pub(crate) struct Key(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    pub(crate) fn random() -> Result<Self, KeyError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(k.as_mut()).map_err(|_| KeyError::Random)?;
        Ok(Self(k))
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The AEAD key (aws-lc clears its schedule when it is freed).
    pub(crate) fn aead(&self) -> Result<LessSafeKey, KeyError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| KeyError::Malformed)
    }
}

/// Argon2id parameters stored with a passphrase slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ArgonParams {
    pub(crate) m: u32,
    pub(crate) t: u32,
    pub(crate) p: u32,
}

/// KWK = Argon2id(passphrase, salt) with `params`, 32 bytes.
pub(crate) fn derive_kwk(
    passphrase: &[u8],
    salt: &[u8],
    params: ArgonParams,
) -> Result<Key, KeyError> {
    let p = argon2::Params::new(params.m, params.t, params.p, Some(KEY_LEN))
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    Ok(Key(out))
}

pub(crate) fn aad_slot(slot_id: &str, root_version: u32) -> Vec<u8> {
    let mut a = b"mc-crypt/slot\0".to_vec();
    a.extend_from_slice(slot_id.as_bytes());
    a.extend_from_slice(&root_version.to_be_bytes());
    a
}

pub(crate) fn aad_mek(mek_version: u32, root_version: u32) -> Vec<u8> {
    let mut a = b"mc-crypt/mek\0".to_vec();
    a.extend_from_slice(&mek_version.to_be_bytes());
    a.extend_from_slice(&root_version.to_be_bytes());
    a
}

pub(crate) fn aad_dek(mount: u64, dek_version: u32, mek_version: u32) -> Vec<u8> {
    let mut a = b"mc-crypt/dek\0".to_vec();
    a.extend_from_slice(&mount.to_be_bytes());
    a.extend_from_slice(&dek_version.to_be_bytes());
    a.extend_from_slice(&mek_version.to_be_bytes());
    a
}

/// Wraps `key` under `under` with `aad`: base64(nonce ‖ ct ‖ tag).
pub(crate) fn wrap(under: &Key, key: &Key, aad: &[u8]) -> Result<String, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Random)?;
    let mut body = Zeroizing::new(key.bytes().to_vec());
    under
        .aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut *body,
        )
        .map_err(|_| KeyError::Malformed)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(STANDARD.encode(out))
}

/// Unwraps what [`wrap`] made.
pub(crate) fn unwrap_key(under: &Key, wrapped: &str, aad: &[u8]) -> Result<Key, KeyError> {
    let raw = STANDARD.decode(wrapped).map_err(|_| KeyError::Malformed)?;
    if raw.len() != NONCE_LEN + KEY_LEN + 16 {
        return Err(KeyError::Malformed);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&raw[..NONCE_LEN]);
    let mut body = Zeroizing::new(raw[NONCE_LEN..].to_vec());
    let plain = under
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| KeyError::Unwrap)?;
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(KeyError::Malformed);
    }
    k.copy_from_slice(plain);
    Ok(Key(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrap_opens_only_under_its_key_and_aad() {
        let kwk = Key::random().expect("rand");
        let root = Key::random().expect("rand");
        let w = wrap(&kwk, &root, &aad_slot("passphrase-1", 1)).expect("wrap");
        let back = unwrap_key(&kwk, &w, &aad_slot("passphrase-1", 1)).expect("unwrap");
        assert_eq!(back.bytes(), root.bytes());
        assert_eq!(
            unwrap_key(&kwk, &w, &aad_slot("passphrase-2", 1)).err(),
            Some(KeyError::Unwrap)
        );
        assert_eq!(
            unwrap_key(
                &Key::random().expect("rand"),
                &w,
                &aad_slot("passphrase-1", 1)
            )
            .err(),
            Some(KeyError::Unwrap)
        );
        assert_eq!(unwrap_key(&kwk, "!!", b"").err(), Some(KeyError::Malformed));
        assert_ne!(aad_mek(1, 1), aad_dek(0, 1, 1));
    }

    #[test]
    fn argon2id_is_deterministic_per_salt() {
        let p = ArgonParams {
            m: 19 * 1024,
            t: 2,
            p: 1,
        };
        let a = derive_kwk(b"correct horse battery", &[1; 16], p).expect("kdf");
        let b = derive_kwk(b"correct horse battery", &[1; 16], p).expect("kdf");
        let c = derive_kwk(b"correct horse battery", &[2; 16], p).expect("kdf");
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
    }
}
