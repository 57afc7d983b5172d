//! The user engine's operations, each taking the [`Authorized`] token
//! `Core::run` builds. The caller is always the principal `run` checked;
//! the only account an operation acts for is the caller's own, except the
//! recipient's public key that `encrypt` and `public_key` read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mc_kit::store::json::WriteTx;
use serde::Serialize;
use zeroize::Zeroizing;

use super::wire::{self, Message};
use super::{AccountKeys, KeyVersion, MAX_PLAINTEXT, MAX_VERSIONS, NameIndex, hpke};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::{USER_KEYS, mount_key};

/// One key version, public half only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserKeyVersion {
    pub version: u32,
    /// X25519, base64.
    pub public_key: String,
    pub created_at: i64,
}

/// An account's key in a mount: never the private half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserKeyInfo {
    pub account_id: String,
    pub username: String,
    pub latest_version: u32,
    pub versions: Vec<UserKeyVersion>,
}

/// What `encrypt` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserEncrypted {
    pub ciphertext: String,
    pub recipient_id: String,
    pub recipient_username: String,
    /// The recipient's key version used.
    pub key_version: u32,
}

/// What `decrypt` answers: the plaintext and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserDecrypted {
    /// Base64.
    pub plaintext: String,
    pub sender_id: String,
    pub sender_username: String,
}

fn key_row(mount: u64, account: &str) -> Vec<u8> {
    let mut rest = vec![1u8];
    rest.extend_from_slice(account.as_bytes());
    mount_key(mount, &rest)
}

fn name_row(mount: u64, username: &str) -> Vec<u8> {
    let mut rest = vec![2u8];
    rest.extend_from_slice(username.as_bytes());
    mount_key(mount, &rest)
}

fn no_key(who: &str) -> CryptError {
    CryptError::NotFound(format!(
        "account {who} has no key: it must run `mcctl crypt user init` first"
    ))
}

fn info(k: &AccountKeys) -> UserKeyInfo {
    UserKeyInfo {
        account_id: k.account_id.clone(),
        username: k.username.clone(),
        latest_version: k.latest,
        versions: k
            .versions
            .iter()
            .map(|(v, kv)| UserKeyVersion {
                version: *v,
                public_key: kv.public.clone(),
                created_at: kv.created_at,
            })
            .collect(),
    }
}

fn new_version() -> Result<KeyVersion, CryptError> {
    let (sk, pk) = hpke::generate().map_err(|_| CryptError::internal("X25519 key generation"))?;
    Ok(KeyVersion {
        private: STANDARD.encode(sk.as_slice()),
        public: STANDARD.encode(pk),
        created_at: mc_kit::clock::unix_now(),
    })
}

fn decode_key(field: &str, b64: &str) -> Result<Zeroizing<Vec<u8>>, CryptError> {
    STANDARD
        .decode(b64)
        .map(Zeroizing::new)
        .map_err(|_| CryptError::internal(format!("stored {field} is not base64")))
}

fn audit(a: &Authorized<'_>, tx: &WriteTx, action: &str, detail: String) -> Result<(), CryptError> {
    let target = format!("{}/{}", a.mount().name, a.principal().username);
    tx.audit(crate::core::event(a.caller(), action, &target, detail))?;
    Ok(())
}

/// Reads an account's keys by id.
fn load(
    rx: &Snapshot,
    a: &Authorized<'_>,
    account: &str,
) -> Result<Option<AccountKeys>, CryptError> {
    let id = a.mount().id;
    rx.get(a.keys(), id, USER_KEYS, &key_row(id, account))
}

/// The caller's keys: read, or (with `create`) made and stored, with the
/// username refreshed when MCIAS renamed the account.
fn own(a: &Authorized<'_>, create: bool) -> Result<Option<AccountKeys>, CryptError> {
    let p = a.principal();
    wire::check_id(&p.account_id)?;
    let rx = Snapshot::begin(a.store())?;
    let current = load(&rx, a, &p.account_id)?;
    drop(rx);
    match current {
        Some(k) if k.username == p.username => return Ok(Some(k)),
        None if !create => return Ok(None),
        _ => {}
    }
    let (keys, id) = (a.keys(), a.mount().id);
    let tx = WriteTx::begin(a.store())?;
    let row = key_row(id, &p.account_id);
    let existing: Option<AccountKeys> = get_sealed(&tx, keys, id, USER_KEYS, &row)?;
    let k = match existing {
        Some(mut k) => {
            if k.username != p.username {
                tx.delete(USER_KEYS, &name_row(id, &k.username))?;
                k.username = p.username.clone();
                put_sealed(&tx, keys, id, USER_KEYS, &row, &k)?;
            }
            k
        }
        None => {
            let k = AccountKeys {
                account_id: p.account_id.clone(),
                username: p.username.clone(),
                latest: 1,
                versions: [(1, new_version()?)].into(),
            };
            put_sealed(&tx, keys, id, USER_KEYS, &row, &k)?;
            audit(a, &tx, "user.key_create", "version=1".to_owned())?;
            k
        }
    };
    let index = NameIndex {
        account_id: k.account_id.clone(),
    };
    put_sealed(&tx, keys, id, USER_KEYS, &name_row(id, &k.username), &index)?;
    tx.commit()?;
    Ok(Some(k))
}

/// `GET keys/self`: the caller's key, 404 when it has none.
pub(crate) fn get_own(a: &Authorized<'_>) -> Result<UserKeyInfo, CryptError> {
    own(a, false)?
        .map(|k| info(&k))
        .ok_or_else(|| no_key(&a.principal().username))
}

/// `POST keys/self`: creates the caller's key unless it has one.
pub(crate) fn init_own(a: &Authorized<'_>) -> Result<UserKeyInfo, CryptError> {
    own(a, true)?
        .map(|k| info(&k))
        .ok_or_else(|| CryptError::internal("key not created"))
}

/// `POST keys/self/rotate`: a new latest version; old ones still decrypt.
pub(crate) fn rotate_own(a: &Authorized<'_>) -> Result<UserKeyInfo, CryptError> {
    own(a, true)?;
    let (keys, id) = (a.keys(), a.mount().id);
    let row = key_row(id, &a.principal().account_id);
    let tx = WriteTx::begin(a.store())?;
    let mut k: AccountKeys = get_sealed(&tx, keys, id, USER_KEYS, &row)?
        .ok_or_else(|| no_key(&a.principal().username))?;
    if k.versions.len() >= MAX_VERSIONS {
        return Err(CryptError::invalid(
            "key",
            "at most 1000 versions per account key",
        ));
    }
    let v = k.latest + 1;
    k.versions.insert(v, new_version()?);
    k.latest = v;
    put_sealed(&tx, keys, id, USER_KEYS, &row, &k)?;
    audit(a, &tx, "user.key_rotate", format!("version={v}"))?;
    tx.commit()?;
    Ok(info(&k))
}

/// An account named by id or username.
fn resolve(rx: &Snapshot, a: &Authorized<'_>, who: &str) -> Result<AccountKeys, CryptError> {
    wire::check_id(who)?;
    if let Some(k) = load(rx, a, who)? {
        return Ok(k);
    }
    let id = a.mount().id;
    let index: Option<NameIndex> = rx.get(a.keys(), id, USER_KEYS, &name_row(id, who))?;
    match index {
        Some(i) => load(rx, a, &i.account_id)?
            .filter(|k| k.username == who)
            .ok_or_else(|| no_key(who)),
        None => Err(no_key(who)),
    }
}

/// `GET keys/<account>`: anyone's public key (by id or username).
pub(crate) fn public_key(a: &Authorized<'_>, who: &str) -> Result<UserKeyInfo, CryptError> {
    let rx = Snapshot::begin(a.store())?;
    resolve(&rx, a, who).map(|k| info(&k))
}

/// `POST encrypt/<account>`: seals `plaintext` (base64) to the account's
/// latest key, authenticated by the caller's (made on first use).
pub(crate) fn encrypt(
    a: &Authorized<'_>,
    to: &str,
    plaintext_b64: &str,
) -> Result<UserEncrypted, CryptError> {
    let plaintext = Zeroizing::new(
        STANDARD
            .decode(plaintext_b64)
            .map_err(|_| CryptError::invalid("plaintext", "not base64"))?,
    );
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptError::invalid("plaintext", "at most 1 MiB"));
    }
    wire::check_id(to).map_err(|_| CryptError::invalid("to", "an account id or username"))?;
    let sender = own(a, true)?.ok_or_else(|| CryptError::internal("key not created"))?;
    let rx = Snapshot::begin(a.store())?;
    let recipient = resolve(&rx, a, to)?;
    let (rv, rkey) = latest(&recipient)?;
    let (sv, skey) = latest(&sender)?;
    let mut msg = Message {
        recipient: recipient.account_id.clone(),
        recipient_version: rv,
        sender: sender.account_id.clone(),
        sender_version: sv,
        sealed: Vec::new(),
    };
    let rpk = decode_key("public key", &rkey.public)?;
    let ssk = decode_key("private key", &skey.private)?;
    msg.sealed = hpke::seal_auth(&rpk, &ssk, &msg.info(), &msg.header(), &plaintext)
        .map_err(|_| CryptError::internal("HPKE seal failed"))?;
    Ok(UserEncrypted {
        ciphertext: msg.encode(),
        recipient_id: recipient.account_id,
        recipient_username: recipient.username,
        key_version: rv,
    })
}

fn latest(k: &AccountKeys) -> Result<(u32, &KeyVersion), CryptError> {
    k.versions
        .get(&k.latest)
        .map(|v| (k.latest, v))
        .ok_or_else(|| CryptError::internal("an account key without its latest version"))
}

/// `POST decrypt`: only the recipient named in the ciphertext opens it.
pub(crate) fn decrypt(a: &Authorized<'_>, ciphertext: &str) -> Result<UserDecrypted, CryptError> {
    let msg = wire::parse(ciphertext)?;
    if msg.recipient != a.principal().account_id {
        return Err(CryptError::Forbidden(
            "permission denied: only the recipient decrypts".to_owned(),
        ));
    }
    let me = own(a, true)?.ok_or_else(|| CryptError::internal("key not created"))?;
    let mine = me.versions.get(&msg.recipient_version).ok_or_else(|| {
        CryptError::invalid(
            "ciphertext",
            "names a key version this account does not have",
        )
    })?;
    let rx = Snapshot::begin(a.store())?;
    let sender = load(&rx, a, &msg.sender)?
        .ok_or_else(|| CryptError::invalid("ciphertext", "the sender has no key in this mount"))?;
    let theirs = sender.versions.get(&msg.sender_version).ok_or_else(|| {
        CryptError::invalid(
            "ciphertext",
            "names a sender key version that does not exist",
        )
    })?;
    let sk = decode_key("private key", &mine.private)?;
    let spk = decode_key("public key", &theirs.public)?;
    let plain =
        hpke::open(&sk, Some(&spk), &msg.info(), &msg.header(), &msg.sealed).map_err(|_| {
            CryptError::invalid(
                "ciphertext",
                "does not decrypt (altered or not for this key)",
            )
        })?;
    Ok(UserDecrypted {
        plaintext: STANDARD.encode(plain.as_slice()),
        sender_id: sender.account_id,
        sender_username: sender.username,
    })
}
