//! The transit engine's core, storage-agnostic: named, versioned keys
//! (aes256-gcm, xchacha20-poly1305, ed25519, ecdsa-p256/p384,
//! rsa-2048/3072/4096, hmac-sha256/512), Vault's version and config rules,
//! and the operations (encrypt, decrypt, rewrap, datakey, sign, verify,
//! hmac, random, hash, export) with Vault's fields, `vault:vN:` outputs,
//! batch semantics and HKDF-SHA256 derivation.
//!
//! The engine frame stores a [`KeyState`] as one sealed JSON row per key,
//! keeps a [`TransitKey`] (every version's cipher or signing key built once)
//! while unsealed, and runs the operations on it: no operation here touches
//! the store. Invariant: a refused request changes no state (mutations
//! validate on a copy), and every version choice passes the key's minimums.

pub mod batch;
pub mod ciphertext;
pub(crate) mod engine;
pub mod error;
pub mod info;
pub mod keys;
pub mod material;
pub mod ops;
pub mod sign;
pub mod types;
pub mod wire;

#[cfg(test)]
mod tests;

pub use batch::{BatchResults, ItemResult, MAX_BATCH};
pub use error::{TOO_OLD, TransitError};
pub use info::{Dialect, describe, export};
pub use keys::{ConfigKey, CreateKey, KeyState, MAX_VERSIONS, TransitKey, validate_name};
pub use material::KeyVersion;
pub use ops::{
    DatakeyOut, DatakeyRequest, DecryptItem, DecryptOut, EncryptItem, EncryptOut, HashOut,
    HashRequest, HmacItem, HmacOut, HmacParams, RandomOut, RandomRequest, RewrapItem, hash,
    random_bytes,
};
pub use sign::{SignItem, SignOut, SignParams, VerifyItem, VerifyOut};
pub use types::{Hash, KeyType};
pub use wire::Input;
