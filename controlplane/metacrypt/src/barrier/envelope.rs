//! The at-rest envelope of every sealed row: encode and parse (pure; fuzzed).
//!
//! ```text
//! offset  size  field
//! 0       3     magic "MCB"
//! 3       1     format version = 1
//! 4       1     cipher = 1 (AES-256-GCM)
//! 5       4     DEK version, u32 BE (≥ 1)
//! 9       12    nonce (random)
//! 21      n     ciphertext
//! 21+n    16    tag
//! AAD = bytes 0..9 (the header) ‖ table name ‖ 0x00 ‖ row key
//! ```
//!
//! Invariant: the AAD binds header, table and row key, so a value moved to
//! another row, table or mount (the mount id leads every row key), or with
//! its version edited, does not open. Overhead: 37 bytes.

#![cfg_attr(not(test), allow(dead_code))] // sealing is the engines' seam; parse is public

use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use zeroize::Zeroizing;

pub(crate) const MAGIC: &[u8; 3] = b"MCB";
pub(crate) const FORMAT: u8 = 1;
pub(crate) const CIPHER_AES_256_GCM: u8 = 1;
pub(crate) const HEADER_LEN: usize = 9;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("too short for an envelope")]
    Short,
    #[error("not an envelope (bad magic)")]
    Magic,
    #[error("unknown envelope format {0}")]
    Format(u8),
    #[error("unknown cipher {0}")]
    Cipher(u8),
    #[error("DEK version 0")]
    Version,
    #[error("the value does not open")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// A parsed envelope: borrowed parts of the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub header: &'a [u8],
    pub dek_version: u32,
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub sealed: &'a [u8],
}

/// Parses `bytes` without opening it (pure; the fuzz target).
pub fn parse(bytes: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    if bytes.len() < OVERHEAD {
        return Err(EnvelopeError::Short);
    }
    if &bytes[..3] != MAGIC {
        return Err(EnvelopeError::Magic);
    }
    if bytes[3] != FORMAT {
        return Err(EnvelopeError::Format(bytes[3]));
    }
    if bytes[4] != CIPHER_AES_256_GCM {
        return Err(EnvelopeError::Cipher(bytes[4]));
    }
    let dek_version = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    if dek_version == 0 {
        return Err(EnvelopeError::Version);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
    Ok(Envelope {
        header: &bytes[..HEADER_LEN],
        dek_version,
        nonce,
        sealed: &bytes[HEADER_LEN + NONCE_LEN..],
    })
}

fn header(dek_version: u32) -> [u8; HEADER_LEN] {
    let v = dek_version.to_be_bytes();
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        FORMAT,
        CIPHER_AES_256_GCM,
        v[0],
        v[1],
        v[2],
        v[3],
    ]
}

fn aad(header: &[u8], table: &str, row_key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + table.len() + 1 + row_key.len());
    a.extend_from_slice(header);
    a.extend_from_slice(table.as_bytes());
    a.push(0);
    a.extend_from_slice(row_key);
    a
}

/// Seals `plain` for row `row_key` of `table` under DEK `version`.
pub(crate) fn seal(
    key: &LessSafeKey,
    dek_version: u32,
    table: &str,
    row_key: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if dek_version == 0 {
        return Err(EnvelopeError::Version);
    }
    let h = header(dek_version);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| EnvelopeError::Seal)?;
    let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
    out.extend_from_slice(&h);
    out.extend_from_slice(&nonce);
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(&h, table, row_key)),
        &mut body,
    )
    .map_err(|_| EnvelopeError::Seal)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a parsed envelope stored at `table`/`row_key` with the key of its
/// DEK version.
pub(crate) fn open(
    key: &LessSafeKey,
    env: &Envelope<'_>,
    table: &str,
    row_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let mut buf = Zeroizing::new(env.sealed.to_vec());
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(env.nonce),
            Aad::from(aad(env.header, table, row_key)),
            &mut buf,
        )
        .map_err(|_| EnvelopeError::Open)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{AES_256_GCM, UnboundKey};

    use super::*;

    fn key(byte: u8) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[byte; 32]).expect("key"))
    }

    fn row(mount: u64, rest: &[u8]) -> Vec<u8> {
        let mut k = mount.to_be_bytes().to_vec();
        k.extend_from_slice(rest);
        k
    }

    #[test]
    fn seal_then_open_round_trips_with_37_bytes_overhead() {
        let k = key(1);
        let r = row(0, b"a");
        let sealed = seal(&k, 3, "mounts", &r, b"hello").expect("seal");
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(OVERHEAD, 37);
        let env = parse(&sealed).expect("parse");
        assert_eq!(env.dek_version, 3);
        assert_eq!(&*open(&k, &env, "mounts", &r).expect("open"), b"hello");
    }

    #[test]
    fn sealed_value_moved_to_another_row_table_or_mount_does_not_open() {
        let k = key(2);
        let r = row(7, b"path/a");
        let sealed = seal(&k, 1, "kv_data", &r, b"secret").expect("seal");
        let env = parse(&sealed).expect("parse");
        assert_eq!(
            open(&k, &env, "kv_data", &row(7, b"path/b")).err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(
            open(&k, &env, "kv_meta", &r).err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(
            open(&k, &env, "kv_data", &row(8, b"path/a")).err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(
            open(&key(3), &env, "kv_data", &r).err(),
            Some(EnvelopeError::Open)
        );
        // An edited version in the header is refused too.
        let mut edited = sealed.clone();
        edited[8] = 2;
        let env2 = parse(&edited).expect("parse");
        assert_eq!(
            open(&k, &env2, "kv_data", &r).err(),
            Some(EnvelopeError::Open)
        );
        // A flipped ciphertext bit.
        let mut flipped = sealed;
        flipped[HEADER_LEN + NONCE_LEN] ^= 1;
        let env3 = parse(&flipped).expect("parse");
        assert_eq!(
            open(&k, &env3, "kv_data", &r).err(),
            Some(EnvelopeError::Open)
        );
    }

    #[test]
    fn parse_refuses_malformed_envelopes_by_reason() {
        let good = seal(&key(1), 1, "t", b"k", b"").expect("seal");
        assert_eq!(
            parse(&good[..OVERHEAD - 1]).err(),
            Some(EnvelopeError::Short)
        );
        let mut m = good.clone();
        m[0] = b'X';
        assert_eq!(parse(&m).err(), Some(EnvelopeError::Magic));
        let mut f = good.clone();
        f[3] = 2;
        assert_eq!(parse(&f).err(), Some(EnvelopeError::Format(2)));
        let mut c = good.clone();
        c[4] = 9;
        assert_eq!(parse(&c).err(), Some(EnvelopeError::Cipher(9)));
        let mut v = good;
        v[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(parse(&v).err(), Some(EnvelopeError::Version));
        assert_eq!(
            seal(&key(1), 0, "t", b"k", b"").err(),
            Some(EnvelopeError::Version)
        );
    }
}
