//! `Metacrypt::run`: the one entry of every engine operation. It checks,
//! in this order, the barrier (503 `sealed`), the caller (401), policy and
//! the token's scopes (403 `permission denied`), then the mount and its
//! type (404), and only then hands the engine an [`Authorized`] token.
//!
//! Invariant: [`Authorized`] has private fields and no constructor outside
//! this file, and every engine function takes one, so no handler reaches
//! an engine around these checks. Policy comes before the mount lookup, so
//! a caller without rights learns nothing about which mounts exist.
//! Background tasks (`core/tasks.rs`) use [`Metacrypt::run_system`], which
//! checks the barrier and the mount type only.

use std::sync::Arc;

use mc_kit::store::Store;
use mc_service::auth::Principal;

use super::view::{Mount, View};
use super::{Caller, Metacrypt};
use crate::barrier::Unsealed;
use crate::engines::Engine as _;
use crate::error::CryptError;
use crate::policy::Capability;

/// An engine operation's request: its mount and what it needs from policy.
pub(crate) trait EngineOp {
    /// The mount type that serves it (`kv`, `transit`…).
    const ENGINE: &'static str;
    /// The mount named in the request.
    fn mount(&self) -> &str;
    /// The sub-path under the mount (`data/app/db`) and the capability the
    /// operation needs there; policy sees `<mount>/<sub-path>`.
    fn access(&self) -> (String, Capability);
    /// A second capability that also admits (an upsert: `create` or
    /// `update`; the engine then requires the one that applies).
    fn alternative(&self) -> Option<Capability> {
        None
    }
}

/// Proof that `run` admitted an operation; what an engine works with.
pub(crate) struct Authorized<'a> {
    keys: &'a Arc<Unsealed>,
    store: &'a Store,
    mount: &'a Mount,
    principal: &'a Principal,
    view: &'a View,
    path: &'a str,
    caller: &'a Caller,
}

impl Authorized<'_> {
    pub(crate) fn keys(&self) -> &Arc<Unsealed> {
        self.keys
    }

    pub(crate) fn store(&self) -> &Store {
        self.store
    }

    pub(crate) fn mount(&self) -> &Mount {
        self.mount
    }

    #[allow(dead_code)] // for engines that act per account (user, transit upserts)
    pub(crate) fn principal(&self) -> &Principal {
        self.principal
    }

    /// The caller, for audit rows.
    pub(crate) fn caller(&self) -> &Caller {
        self.caller
    }

    /// Another capability on the same path (an upsert that turns out to
    /// update an existing entry needs `update` as well as `create`).
    pub(crate) fn require(&self, capability: Capability) -> Result<(), CryptError> {
        admit(self.view, self.principal, self.path, capability)
    }
}

fn denied() -> CryptError {
    CryptError::Forbidden("permission denied".to_owned())
}

/// Policy, then the token's scopes (`crypt:<capability>` on the path).
fn admit(view: &View, p: &Principal, path: &str, capability: Capability) -> Result<(), CryptError> {
    if !view.policy.evaluate(p, path, capability).allowed {
        return Err(denied());
    }
    let action = format!("crypt:{}", capability.as_str());
    if !p.scope_allows(&action, path) {
        return Err(denied());
    }
    Ok(())
}

impl Metacrypt {
    /// Runs an engine operation after the barrier, policy and mount checks,
    /// and counts it (`metacrypt_requests_total`).
    pub(crate) fn run<O: EngineOp, R>(
        &self,
        caller: &Caller,
        op: &O,
        f: impl FnOnce(Authorized<'_>) -> Result<R, CryptError>,
    ) -> Result<R, CryptError> {
        let (sub, capability) = op.access();
        let r = self.run_checked(caller, op, &sub, capability, f);
        self.requests.count(O::ENGINE, &sub, &r);
        r
    }

    fn run_checked<O: EngineOp, R>(
        &self,
        caller: &Caller,
        op: &O,
        sub: &str,
        capability: Capability,
        f: impl FnOnce(Authorized<'_>) -> Result<R, CryptError>,
    ) -> Result<R, CryptError> {
        let keys = self.barrier.unsealed()?;
        let view = self.view(&keys)?;
        let principal = caller.require()?;
        let path = format!("{}/{}", op.mount(), sub);
        let first = admit(&view, principal, &path, capability);
        match (first, op.alternative()) {
            (Ok(()), _) => {}
            (Err(_), Some(other)) => admit(&view, principal, &path, other)?,
            (Err(e), None) => return Err(e),
        }
        let mount = view
            .mounts
            .get(op.mount())
            .ok_or_else(|| CryptError::NotFound(format!("no mount named {}", op.mount())))?;
        if mount.kind != O::ENGINE {
            return Err(CryptError::NotFound(format!(
                "unsupported path: {} is a {} mount",
                mount.name, mount.kind
            )));
        }
        f(Authorized {
            keys: &keys,
            store: &self.store,
            mount,
            principal,
            view: &view,
            path: &path,
            caller,
        })
    }
}

impl Metacrypt {
    /// Runs an ACME operation on pki mount `mount` as `caller` (the MCIAS
    /// account an ACME account is bound to, or the anonymous ACME caller
    /// before binding). ACME requests carry no MCIAS token: the JWS is
    /// their authentication and policy was checked when the EAB key was
    /// created (docs/design/acme.md), so only the barrier and the mount are
    /// checked here.
    pub(crate) fn run_acme<R>(
        &self,
        caller: &Caller,
        mount: &str,
        f: impl FnOnce(Authorized<'_>) -> Result<R, CryptError>,
    ) -> Result<R, CryptError> {
        self.run_unchecked(caller, mount, "acme", f)
    }

    fn run_unchecked<R>(
        &self,
        caller: &Caller,
        mount: &str,
        sub: &str,
        f: impl FnOnce(Authorized<'_>) -> Result<R, CryptError>,
    ) -> Result<R, CryptError> {
        let keys = self.barrier.unsealed()?;
        let view = self.view(&keys)?;
        let principal = caller.require()?;
        let m = view
            .mounts
            .get(mount)
            .filter(|m| m.kind == crate::engines::pki::Pki::TYPE)
            .ok_or_else(|| CryptError::NotFound(format!("no pki mount named {mount}")))?;
        let path = format!("{mount}/{sub}");
        f(Authorized {
            keys: &keys,
            store: &self.store,
            mount: m,
            principal,
            view: &view,
            path: &path,
            caller,
        })
    }
}

/// The principal background tasks act as (audit rows name it).
pub(crate) fn system_caller() -> Caller {
    Caller {
        principal: Some(Principal {
            account_id: "metacrypt-jobs".to_owned(),
            username: "metacrypt-jobs".to_owned(),
            account_type: "system".to_owned(),
            roles: vec![],
            tags: vec![],
            jti: String::new(),
            expires_at: 0,
            scopes: vec![],
        }),
        source: None,
    }
}

impl Metacrypt {
    /// Runs `f` on every mount of type `engine` as the background tasks'
    /// principal. Only the jobs loop's tasks (`core/tasks.rs`, and the CRL
    /// refresh in `core/pki_crl.rs`) call it: the tasks act on the
    /// operator's configuration (a key's `auto_rotate_period`, a mount's
    /// `delete_version_after`, a CRL's lifetime), not on a caller's request, so policy does
    /// not apply; the barrier does (sealed: nothing runs).
    pub(crate) fn run_system(
        &self,
        engine: &str,
        mut f: impl FnMut(Authorized<'_>) -> Result<(), CryptError>,
    ) -> Result<(), CryptError> {
        let keys = self.barrier.unsealed()?;
        let view = self.view(&keys)?;
        let caller = system_caller();
        let principal = caller.require()?;
        for mount in view.mounts.values().filter(|m| m.kind == engine) {
            let path = format!("{}/", mount.name);
            f(Authorized {
                keys: &keys,
                store: &self.store,
                mount,
                principal,
                view: &view,
                path: &path,
                caller: &caller,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::core::MountInput;

    /// An operation of another engine type, aimed at a kv mount.
    struct Other<'a>(&'a str);

    impl EngineOp for Other<'_> {
        const ENGINE: &'static str = "transit";
        fn mount(&self) -> &str {
            self.0
        }
        fn access(&self) -> (String, Capability) {
            ("encrypt/k".to_owned(), Capability::Update)
        }
    }

    #[tokio::test]
    async fn run_checks_barrier_then_policy_then_mount_type() {
        let (_d, m, admin) = crate::testing::unsealed().await;
        m.create_mount(
            &admin,
            MountInput {
                name: "secret".to_owned(),
                kind: "kv".to_owned(),
                description: String::new(),
                config: Some(Value::Null),
            },
        )
        .expect("mount");
        let reached = |r: Result<(), CryptError>| r;
        // A mount of another type: 404 "unsupported path", the engine not reached.
        let r = reached(m.run(&admin, &Other("secret"), |_| {
            panic!("the engine must not run")
        }));
        assert!(
            matches!(&r, Err(CryptError::NotFound(msg)) if msg.starts_with("unsupported path")),
            "{r:?}"
        );
        // No caller: 401 before anything else is looked at.
        let r = m.run(&Caller::default(), &Other("secret"), |_| Ok(()));
        assert!(matches!(r, Err(CryptError::Unauthenticated(_))), "{r:?}");
        // Sealed: 503 first, even for a caller policy would refuse.
        m.seal(&admin).await.expect("seal");
        let r = m.run(&Caller::default(), &Other("secret"), |_| Ok(()));
        assert!(matches!(r, Err(CryptError::Unavailable(s)) if s == "sealed"));
    }
}
