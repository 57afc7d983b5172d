//! Metacrypt: the platform's cryptographic service. Built so far: the
//! seal/unseal barrier (passphrase and Shamir slots, root key → MEK → a DEK
//! ring per mount, the versioned at-rest envelope), engine mounts, path
//! policy, the kv engine and the `sys` API, over REST and gRPC. Transit,
//! user, the Vault facade and the UI follow (docs/design/metacrypt.md).
//!
//! Split by capability, not transport: [`core`] holds the operations (and
//! imports neither adapter), [`api`] the REST and gRPC adapters over it;
//! both are authorized by one [`methods`] map. Only `barrier` holds keys;
//! every engine operation goes through `Metacrypt::run` (`core/run.rs`).

pub mod api;
pub(crate) mod barrier;
pub mod config;
pub mod core;
pub mod engines;
pub mod error;
pub mod hosted;
pub mod methods;
pub mod policy;
pub(crate) mod store;

pub use config::MetacryptConfig;
pub use core::Metacrypt;
pub use hosted::dev_passphrase_path;

/// Entry points for the fuzz targets (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// The Vault facade's request decoding (pure): whether it decodes.
    pub use crate::api::vault::decode::accepts as vault_request_accepts;
    pub use crate::barrier::envelope::{Envelope, EnvelopeError, parse as parse_envelope};
    /// The transit core, for the criterion benches (`benches/transit.rs`).
    pub use crate::engines::transit;
    pub use crate::engines::transit::ciphertext::{
        Alphabet as TransitAlphabet, encode as encode_transit, parse as parse_transit,
    };

    /// Parses a Shamir share's text; `Some((set id, x))` when it is well formed.
    pub fn decode_share(text: &str) -> Option<(u32, u8)> {
        crate::barrier::shamir::decode(text)
            .ok()
            .map(|s| (s.set_id, s.x))
    }
}
