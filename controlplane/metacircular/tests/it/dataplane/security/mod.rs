//! Data-plane security regression suite: one test per item of the adversarial review
//! (issue 12, items 8–12). Each test performs the attack as the review
//! described it, against the real `mcd dataplane` on 127.0.0.1, and asserts
//! the refusal; the decisions behind them are unit-tested next to the code
//! (`mc-proxy` `worker/l7/headers.rs`, `admin/certificates.rs`; `mc-dns` config).
//!
//! - `proxy`: MC-Proxy L7 — Host/SNI mismatch (8), h2c smuggling (9),
//!   `Forwarded` spoofing (10), certificate chains (11);
//! - `dns`: MCNS and configs — defaults and secret-bearing configs (12).

mod dns;
mod proxy;
