//! Integration tests: the real `mcd` and `mcctl` binaries, real clients (curl), loopback only.

mod cli;
mod dev;
mod dns;
mod iam;
mod peers;
mod proxy;
mod support;
