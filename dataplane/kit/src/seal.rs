//! Sealing values at rest: AES-256-GCM under a key the store never holds.
//!
//! Architecture invariant: a sealed value is bound to where it is stored —
//! the additional authenticated data is `table ‖ 0 ‖ key` by construction
//! ([`Sealer::seal`] takes the location, not free-form AAD) — so a
//! ciphertext copied to another row or table does not open.
//!
//! [`KeyFileSealer`] keeps its 32-byte key in a 0600 file beside the store
//! (e.g. `mcias/master.key`, `mc-proxy/cert-seal.key`); `mcd snapshot`
//! carries those files so a restored node opens its sealed data. Metacrypt's
//! barrier is the planned second implementation of [`Sealer`].
//!
//! Format: `MCS1 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`. Values sealed before
//! this format existed (no `MCS1` prefix, caller-chosen AAD) still open
//! through [`KeyFileSealer::open_legacy`]; they are re-sealed when next written.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"MCS1";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("{path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("no randomness available")]
    Random,
    #[error("sealing failed")]
    Seal,
    /// Wrong key, tampered value, or a value moved from another location.
    #[error(
        "a sealed value in `{table}` does not open (wrong key file, or the value was altered or moved)"
    )]
    Open { table: String },
    #[error("a sealed value in `{table}` is malformed")]
    Malformed { table: String },
}

/// Seals and opens values bound to their storage location.
pub trait Sealer: Send + Sync {
    fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError>;
    fn open(&self, table: &str, key: &[u8], sealed: &[u8])
    -> Result<Zeroizing<Vec<u8>>, SealError>;
}

/// AES-256-GCM with the key in a 0600 file.
pub struct KeyFileSealer {
    key: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for KeyFileSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileSealer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(table.len() + 1 + key.len());
    a.extend_from_slice(table.as_bytes());
    a.push(0);
    a.extend_from_slice(key);
    a
}

impl KeyFileSealer {
    /// Reads the key file, creating it (0600, parent 0700) on first use; a
    /// more permissive existing file is tightened.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let err = |message: String| SealError::KeyFile {
            path: path.to_owned(),
            message,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = Zeroizing::new(vec![0_u8; KEY_LEN]);
                SystemRandom::new()
                    .fill(k.as_mut_slice())
                    .map_err(|_| SealError::Random)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| err(e.to_string()))?;
                f.write_all(&k)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(e.to_string()))?;
                k
            }
            Err(e) => return Err(err(e.to_string())),
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err(e.to_string()))?;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| err(format!("not a {KEY_LEN}-byte key")))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            path: path.to_owned(),
        })
    }

    /// The key file (what a snapshot must carry).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn seal_with(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut buf = Zeroizing::new(plain.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *buf,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open_with(
        &self,
        table: &str,
        aad: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (nonce, rest) =
            body.split_at_checked(NONCE_LEN)
                .ok_or_else(|| SealError::Malformed {
                    table: table.to_owned(),
                })?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed {
            table: table.to_owned(),
        })?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| SealError::Open {
                table: table.to_owned(),
            })?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    /// Opens a value sealed before the `MCS1` format, with the AAD its
    /// writer chose (`nonce ‖ ciphertext ‖ tag`). Values with the prefix are
    /// opened as [`Sealer::open`] would.
    pub fn open_legacy(
        &self,
        table: &str,
        key: &[u8],
        legacy_aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match sealed.strip_prefix(MAGIC) {
            Some(_) => self.open(table, key, sealed),
            None => self.open_with(table, legacy_aad, sealed),
        }
    }
}

impl Sealer for KeyFileSealer {
    fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_with(&aad(table, key), plain)
    }

    fn open(
        &self,
        table: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let body = sealed
            .strip_prefix(MAGIC)
            .ok_or_else(|| SealError::Malformed {
                table: table.to_owned(),
            })?;
        self.open_with(table, &aad(table, key), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bound_to_its_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("seal.key");
        let s = KeyFileSealer::load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = s.seal("keys", b"k1", b"secret").expect("seal");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            s.open("keys", b"k1", &sealed).expect("open").as_slice(),
            b"secret"
        );
        // Moved to another row or table: refused.
        assert!(matches!(
            s.open("keys", b"k2", &sealed),
            Err(SealError::Open { .. })
        ));
        assert!(matches!(
            s.open("other", b"k1", &sealed),
            Err(SealError::Open { .. })
        ));
        // Table/key boundary is unambiguous: ("ab","c") ≠ ("a","bc").
        let x = s.seal("ab", b"c", b"v").expect("seal");
        assert!(s.open("a", b"bc", &x).is_err());
        // Tampered: refused.
        let mut bad = sealed.clone();
        if let Some(b) = bad.last_mut() {
            *b ^= 1;
        }
        assert!(s.open("keys", b"k1", &bad).is_err());
        // The same key file opens it again; another key file does not.
        let again = KeyFileSealer::load_or_create(&path).expect("load");
        assert_eq!(
            again.open("keys", b"k1", &sealed).expect("open").as_slice(),
            b"secret"
        );
        let other = KeyFileSealer::load_or_create(&dir.path().join("other.key")).expect("other");
        assert!(other.open("keys", b"k1", &sealed).is_err());
    }

    #[test]
    fn legacy_values_open_with_their_own_aad() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = KeyFileSealer::load_or_create(&dir.path().join("k")).expect("create");
        let legacy = s.seal_with(b"kid-7", b"old").expect("seal");
        let legacy = legacy.strip_prefix(MAGIC).expect("prefix").to_vec();
        assert_eq!(
            s.open_legacy("keys", b"kid-7", b"kid-7", &legacy)
                .expect("open")
                .as_slice(),
            b"old"
        );
        let current = s.seal("keys", b"kid-7", b"new").expect("seal");
        assert_eq!(
            s.open_legacy("keys", b"kid-7", b"ignored", &current)
                .expect("open")
                .as_slice(),
            b"new"
        );
    }

    #[test]
    fn a_short_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            KeyFileSealer::load_or_create(&path),
            Err(SealError::KeyFile { .. })
        ));
    }
}
