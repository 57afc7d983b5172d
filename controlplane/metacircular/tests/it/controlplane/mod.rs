//! The control plane end to end: `mcd controlplane` (MCIAS, Metacrypt) driven by curl,
//! mcctl, an OIDC relying party, a software passkey and a headless browser.

mod crypt;
mod crypt_kv;
mod crypt_policy;
mod crypt_transit;
pub(crate) mod iam;
