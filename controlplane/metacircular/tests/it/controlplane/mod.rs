//! The control plane end to end: `mcd controlplane` (MCIAS, Metacrypt, MCR) driven by curl, skopeo,
//! mcctl, an OIDC relying party, a software passkey and a headless browser.

mod crypt;
mod crypt_acme;
mod crypt_acme_dns;
mod crypt_acme_keys;
mod crypt_keyfile;
mod crypt_kv;
mod crypt_kv_expiry;
mod crypt_metrics;
mod crypt_ocsp;
mod crypt_pki;
mod crypt_pki_crl;
mod crypt_policy;
mod crypt_rekey;
mod crypt_rewrap;
mod crypt_root_rekey;
mod crypt_ssh;
mod crypt_transit;
mod crypt_ui;
mod crypt_user;
pub(crate) mod iam;
mod mcr;
mod vault;
mod vault_pki;
