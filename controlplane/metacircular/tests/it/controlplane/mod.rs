//! The control plane end to end: `mcd controlplane` (MCIAS) driven by curl,
//! mcctl, an OIDC relying party, a software passkey and a headless browser.

pub(crate) mod iam;
