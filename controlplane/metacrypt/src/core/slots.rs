//! `sys/barrier/slots`: list the slots, add a keyfile slot (auto-unseal),
//! change the passphrase, re-split the Shamir shares, remove a slot, and
//! the start-time auto-unseal. Admin-only in the method map; adding a
//! slot also needs the current passphrase (unseal material), checked and
//! rate-limited like an unseal.

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Caller, Metacrypt};
use crate::barrier::Actor;
use crate::error::CryptError;

pub use crate::barrier::keyfile::SlotInfo;

/// `POST sys/barrier/slots`: `{kind: "keyfile", passphrase}`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSlotInput {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub passphrase: String,
}

/// What adding a keyfile slot answers.
#[derive(Debug, serde::Serialize)]
pub struct SlotAdded {
    pub slot: SlotInfo,
    /// Where the key file was written.
    pub path: String,
}

/// Current unseal material: the passphrase, or k shares of the current set
/// (`DELETE sys/barrier/slots/{id}`'s body).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Material {
    #[serde(default)]
    pub passphrase: String,
    #[serde(default)]
    pub shares: Vec<String>,
}

impl Material {
    fn into_barrier(self) -> Result<crate::barrier::rekey::Material, CryptError> {
        use crate::barrier::rekey::Material as M;
        match (self.passphrase.is_empty(), self.shares.is_empty()) {
            (false, true) => Ok(M::Passphrase(Zeroizing::new(self.passphrase))),
            (true, false) if self.shares.len() <= 16 => Ok(M::Shares(
                self.shares.into_iter().map(Zeroizing::new).collect(),
            )),
            (true, false) => Err(CryptError::invalid("shares", "at most 16")),
            _ => Err(CryptError::invalid(
                "passphrase",
                "give exactly one of the current passphrase or the current shares",
            )),
        }
    }
}

/// `POST sys/barrier/passphrase`: a new passphrase slot.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassphraseInput {
    /// The current material.
    #[serde(default)]
    pub passphrase: String,
    #[serde(default)]
    pub shares: Vec<String>,
    #[serde(default)]
    pub new_passphrase: String,
}

/// `POST sys/barrier/shamir`: a new split, `new_shares` of which any
/// `new_threshold` open.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshareInput {
    /// The current material.
    #[serde(default)]
    pub passphrase: String,
    #[serde(default)]
    pub shares: Vec<String>,
    #[serde(default)]
    pub new_shares: u32,
    #[serde(default)]
    pub new_threshold: u32,
}

/// What a re-split answers: the slot and the new shares (once).
#[derive(Debug, serde::Serialize)]
pub struct Reshared {
    pub slot: SlotInfo,
    pub shares: Vec<String>,
}

/// What a root key rekey answers: the new versions.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RekeyOutput {
    pub root_version: u32,
    pub mek_version: u32,
}

fn actor(c: &Caller) -> Actor {
    Actor {
        actor: c.actor(),
        ip: c.ip(),
    }
}

impl Metacrypt {
    pub async fn change_passphrase(
        &self,
        c: &Caller,
        input: ChangePassphraseInput,
    ) -> Result<SlotInfo, CryptError> {
        self.barrier.unsealed()?;
        crate::barrier::check_passphrase(&input.new_passphrase)
            .map_err(|_| CryptError::invalid("new_passphrase", "12 characters to 1024 bytes"))?;
        let material = Material {
            passphrase: input.passphrase,
            shares: input.shares,
        }
        .into_barrier()?;
        self.barrier
            .change_passphrase(material, Zeroizing::new(input.new_passphrase), &actor(c))
            .await
    }

    pub async fn reshare(&self, c: &Caller, input: ReshareInput) -> Result<Reshared, CryptError> {
        self.barrier.unsealed()?;
        let small = |f: &str, v: u32| {
            u8::try_from(v)
                .ok()
                .filter(|v| (2..=16).contains(v))
                .ok_or_else(|| CryptError::invalid(f, "2 to 16"))
        };
        let (n, k) = (
            small("new_shares", input.new_shares)?,
            small("new_threshold", input.new_threshold)?,
        );
        if k > n {
            return Err(CryptError::invalid("new_threshold", "at most new_shares"));
        }
        let material = Material {
            passphrase: input.passphrase,
            shares: input.shares,
        }
        .into_barrier()?;
        let (slot, shares) = self.barrier.reshare(material, n, k, &actor(c)).await?;
        Ok(Reshared {
            slot,
            shares: shares.iter().map(|s| s.as_str().to_owned()).collect(),
        })
    }

    pub async fn remove_slot(
        &self,
        c: &Caller,
        id: &str,
        current: Material,
    ) -> Result<(), CryptError> {
        self.barrier.unsealed()?;
        let material = current.into_barrier()?;
        self.barrier.remove_slot(material, id, &actor(c)).await
    }

    /// `POST sys/barrier/rekey`: a new root key and MEK; `material` holds
    /// every slot's (the passphrase and k shares when both slots exist; a
    /// keyfile slot's file is read from `auto_unseal_key_file`).
    pub async fn rekey(&self, c: &Caller, material: Material) -> Result<RekeyOutput, CryptError> {
        self.barrier.unsealed()?;
        if material.shares.len() > 16 {
            return Err(CryptError::invalid("shares", "at most 16"));
        }
        if material.passphrase.is_empty() && material.shares.is_empty() {
            return Err(CryptError::invalid(
                "passphrase",
                "give the current passphrase and/or shares (every slot's)",
            ));
        }
        let m = crate::barrier::rootkey::RekeyMaterial {
            passphrase: (!material.passphrase.is_empty())
                .then(|| Zeroizing::new(material.passphrase)),
            shares: material.shares.into_iter().map(Zeroizing::new).collect(),
            key_file: self.config.auto_unseal_key_file.clone(),
        };
        let r = self.barrier.rekey_root(m, &actor(c)).await?;
        self.changed();
        Ok(RekeyOutput {
            root_version: r.root_version,
            mek_version: r.mek_version,
        })
    }

    pub fn list_slots(&self) -> Result<Vec<SlotInfo>, CryptError> {
        self.barrier.unsealed()?;
        self.barrier.slots()
    }

    pub async fn add_slot(&self, c: &Caller, input: AddSlotInput) -> Result<SlotAdded, CryptError> {
        self.barrier.unsealed()?;
        if input.kind != "keyfile" {
            return Err(CryptError::invalid(
                "kind",
                "keyfile (passphrase and Shamir slots change by rekey)",
            ));
        }
        let Some(path) = self.config.auto_unseal_key_file.clone() else {
            return Err(CryptError::FailedPrecondition(
                "no key file path: set [metacrypt] auto_unseal_key_file first".to_owned(),
            ));
        };
        let who = Actor {
            actor: c.actor(),
            ip: c.ip(),
        };
        let slot = self
            .barrier
            .add_keyfile_slot(Zeroizing::new(input.passphrase), &path, &who)
            .await?;
        Ok(SlotAdded {
            slot,
            path: path.display().to_string(),
        })
    }

    /// At start, with `auto_unseal_key_file` set: unseal from it, or stay
    /// sealed and say why (the passphrase still unseals).
    pub fn auto_unseal(&self) {
        let Some(path) = &self.config.auto_unseal_key_file else {
            return;
        };
        match self.barrier.auto_unseal(path) {
            Ok(s) if !s.sealed => {}
            Ok(_) => {}
            Err(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "metacrypt: auto-unseal from the key file failed; it stays sealed (unseal with the passphrase)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    use super::*;
    use crate::core::{InitInput, UnsealInputBody};
    use crate::testing::{PASS, admin};

    fn add(pass: &str) -> AddSlotInput {
        AddSlotInput {
            kind: "keyfile".to_owned(),
            passphrase: pass.to_owned(),
        }
    }

    #[tokio::test]
    async fn keyfile_slot_unseals_at_start_and_a_bad_file_leaves_it_sealed() {
        let dir = tempfile::tempdir().expect("tmp");
        let usb = tempfile::tempdir().expect("usb");
        let key = usb.path().join("metacrypt.key");
        let config = crate::config::MetacryptConfig {
            argon2_memory_kib: crate::config::ARGON2_MIN_MEMORY_KIB,
            argon2_iterations: 2,
            auto_unseal_key_file: Some(key.clone()),
            ..crate::config::MetacryptConfig::default()
        };
        let db = dir.path().join("m.redb");
        let m = Arc::new(Metacrypt::open(&db, config.clone()).expect("open"));
        let a = admin();
        m.init(
            &a,
            InitInput {
                passphrase: Some(PASS.to_owned()),
                ..InitInput::default()
            },
        )
        .await
        .expect("init");
        // Refused by field / passphrase, nothing written.
        let r = m
            .add_slot(
                &a,
                AddSlotInput {
                    kind: "shamir".into(),
                    passphrase: PASS.into(),
                },
            )
            .await;
        assert!(matches!(r, Err(CryptError::Invalid(_))), "{r:?}");
        let r = m.add_slot(&a, add("not the passphrase")).await;
        assert!(matches!(r, Err(CryptError::Forbidden(_))), "{r:?}");
        assert!(!key.exists());
        let added = m.add_slot(&a, add(PASS)).await.expect("add");
        assert_eq!(added.slot.kind, "keyfile");
        let meta = std::fs::metadata(&key).expect("written");
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
        let kinds: Vec<String> = m
            .list_slots()
            .expect("slots")
            .into_iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, ["passphrase", "keyfile"]);
        drop(m);

        // A restart is sealed; the key file unseals it.
        let m = Metacrypt::open(&db, config.clone()).expect("reopen");
        assert!(m.status().expect("status").sealed);
        m.auto_unseal();
        assert!(
            !m.status().expect("status").sealed,
            "unsealed from the file"
        );
        drop(m);

        // Loose permissions, a damaged file, a missing file: sealed.
        let original = std::fs::read(&key).expect("read");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let m = Metacrypt::open(&db, config.clone()).expect("reopen");
        let e = m.barrier.auto_unseal(&key).expect_err("loose");
        assert!(e.to_string().contains("0600"), "{e}");
        let mut bent = original.clone();
        bent[0] ^= 1;
        std::fs::write(&key, &bent).expect("damage");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = m.barrier.auto_unseal(&key).expect_err("damaged");
        assert!(e.to_string().contains("matches no keyfile slot"), "{e}");
        std::fs::remove_file(&key).expect("rm");
        let e = m.barrier.auto_unseal(&key).expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
        assert!(m.status().expect("status").sealed);
        // The passphrase still unseals; the failures did not back it off.
        m.unseal(
            &a,
            UnsealInputBody {
                passphrase: Some(PASS.to_owned()),
                ..Default::default()
            },
        )
        .await
        .expect("passphrase");
        // A new keyfile slot replaces the old one: the old bytes open nothing.
        m.add_slot(&a, add(PASS)).await.expect("again");
        assert_eq!(m.list_slots().expect("slots").len(), 2);
        m.seal(&a).await.expect("seal");
        std::fs::write(usb.path().join("old.key"), &original).expect("old");
        std::fs::set_permissions(
            usb.path().join("old.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        assert!(m.barrier.auto_unseal(&usb.path().join("old.key")).is_err());
        assert!(m.barrier.auto_unseal(&key).is_ok());
        assert!(!m.status().expect("status").sealed);
    }
}
