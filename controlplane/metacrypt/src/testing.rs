//! Fixtures the unit tests share: callers and an unsealed store in a
//! temporary directory, with Argon2 at its floor so tests stay fast.

use std::sync::Arc;

use mc_service::auth::Principal;

use crate::config::{ARGON2_MIN_MEMORY_KIB, MetacryptConfig};
use crate::core::{Caller, InitInput, Metacrypt};

/// The passphrase every fixture initialises with.
pub(crate) const PASS: &str = "a long enough passphrase";

/// A human account `name` with `roles`, as the token verifier would hand it over.
pub(crate) fn principal(name: &str, roles: &[&str]) -> Principal {
    Principal {
        account_id: format!("id-{name}"),
        username: name.to_owned(),
        account_type: "human".to_owned(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        tags: vec![],
        jti: format!("jti-{name}"),
        expires_at: i64::MAX,
        scopes: vec![],
    }
}

pub(crate) fn caller(name: &str, roles: &[&str]) -> Caller {
    Caller {
        principal: Some(principal(name, roles)),
        source: None,
    }
}

pub(crate) fn admin() -> Caller {
    caller("admin", &["admin"])
}

/// The default configuration with the cheapest Argon2 the config accepts.
pub(crate) fn fast_config() -> MetacryptConfig {
    MetacryptConfig {
        argon2_memory_kib: ARGON2_MIN_MEMORY_KIB,
        argon2_iterations: 2,
        ..MetacryptConfig::default()
    }
}

/// A new store initialised with [`PASS`] (so unsealed), and its admin.
pub(crate) async fn unsealed() -> (tempfile::TempDir, Arc<Metacrypt>, Caller) {
    let dir = tempfile::tempdir().expect("tmp");
    let m = Arc::new(Metacrypt::open(&dir.path().join("m.redb"), fast_config()).expect("open"));
    let admin = admin();
    m.init(
        &admin,
        InitInput {
            passphrase: Some(PASS.to_owned()),
            ..InitInput::default()
        },
    )
    .await
    .expect("init");
    (dir, m, admin)
}
