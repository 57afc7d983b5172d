//! Integration tests of mc-firewall against real MaxMind DB files, built at
//! test time by `tests/fixtures/make-mmdb.pl` (Debian package
//! `libmaxmind-db-writer-perl`).

mod geoip;
mod support;
