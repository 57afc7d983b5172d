//! Integration tests: the real `mcd` and `mcctl` binaries, real clients (curl), loopback only.
//! `dataplane/` and `controlplane/` test one plane each; `cli`, `dev` and `restore` the whole node.

/// Runs `$name(io_uring_mode)` once per driver: every data-plane scenario
/// must hold on io_uring and on the epoll fallback.
macro_rules! both_drivers {
    ($name:ident) => {
        mod $name {
            #[test]
            fn io_uring_auto() {
                super::$name("auto");
            }
            #[test]
            fn epoll() {
                super::$name("off");
            }
        }
    };
}

mod peers;
mod ports;
mod support;

mod agent;
mod controlplane;
mod dataplane;

mod cli;
mod cli_json;
mod cli_operator;
mod cli_refusals;
mod dev;
mod dev_pki;
mod first_hour;
mod mcdoc;
mod restore;
