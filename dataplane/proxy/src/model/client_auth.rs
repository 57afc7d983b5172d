//! Client certificates on an L7 route (mTLS).
//!
//! Invariant: a validated `ca_pem` is a non-empty PEM bundle of at most
//! 256 KiB whose every certificate is a usable trust anchor.

use serde::{Deserialize, Serialize};

use super::{Invalid, MAX_CA_PEM};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientAuth {
    /// The CAs a client certificate must chain to (PEM).
    pub ca_pem: String,
    /// Ask for a certificate but also serve clients without one (their
    /// requests carry no identity). `false`: the handshake needs one.
    #[serde(default)]
    pub optional: bool,
}

impl ClientAuth {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.ca_pem.len() > MAX_CA_PEM {
            return Err(Invalid::new("route.l7.client_ca_pem", "at most 256 KiB"));
        }
        crate::tls::parse_roots(self.ca_pem.as_bytes())
            .map_err(|m| Invalid::new("route.l7.client_ca_pem", m))?;
        Ok(())
    }
}
