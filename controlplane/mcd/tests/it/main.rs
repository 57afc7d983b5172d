//! Integration tests: the real `mcd` and `mcctl` binaries, real clients (curl), loopback only.

mod cli;
mod dev;
mod dns;
mod peers;
mod proxy;
mod support;
