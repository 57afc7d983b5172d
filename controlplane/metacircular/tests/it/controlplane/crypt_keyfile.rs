//! Keyfile auto-unseal end to end: init, `mcctl crypt slots add-keyfile`
//! writes the 0600 key file on "separate storage" (another directory), a
//! restarted `mcd controlplane` is unsealed with its data readable; a
//! damaged or removed file leaves it sealed with a log line saying why, and
//! the passphrase still unseals.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;

use serde_json::json;

use super::crypt::{CONFIG, PASSPHRASE, endpoints, mcctl_json, state, unseal};
use super::iam::Controlplane;

fn start(dir: &Path, key: &Path, log: Option<&Path>) -> Controlplane {
    let config = format!("{CONFIG}auto_unseal_key_file = \"{}\"\n", key.display());
    let stderr = match log {
        Some(p) => Stdio::from(std::fs::File::create(p).expect("log")),
        None => Stdio::inherit(),
    };
    Controlplane::start_with(dir, &config, "", stderr)
}

fn read_secret(cp: &Controlplane, admin: &str) -> (u16, serde_json::Value) {
    cp.call("GET", "/v1/crypt/secret/data/app/db", Some(admin), None)
}

#[test]
fn crypt_keyfile_auto_unseal_after_restart_and_a_bad_file_stays_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let usb = tempfile::tempdir().expect("separate storage");
    let key = usb.path().join("metacrypt.key");
    let cp = start(dir.path(), &key, None);
    let admin = cp.token("admin", &cp.password);
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/init",
        Some(&admin),
        Some(json!({"passphrase": PASSPHRASE})),
    );
    assert_eq!(code, 200, "{body}");
    for (path, body) in [
        (
            "/v1/crypt/sys/mounts",
            json!({"name": "secret", "type": "kv"}),
        ),
        (
            "/v1/crypt/secret/data/app/db",
            json!({"data": {"pw": "s3cret"}}),
        ),
    ] {
        let (code, body) = cp.call("POST", path, Some(&admin), Some(body));
        assert_eq!(code, 200, "{body}");
    }
    let home = dir.path().join("mcctl-admin");
    std::fs::create_dir_all(&home).expect("dir");
    let eps = endpoints(&home, &cp);
    std::fs::write(home.join("mcctl-token"), &admin).expect("token");
    let added = mcctl_json(
        &eps,
        &[
            "crypt",
            "slots",
            "add-keyfile",
            "--passphrase-stdin",
            "--json",
        ],
        &format!("{PASSPHRASE}\n"),
    );
    assert_eq!(added["slot"]["kind"], "keyfile", "{added}");
    assert_eq!(added["path"], key.display().to_string(), "{added}");
    let meta = std::fs::metadata(&key).expect("key file");
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
    let slots = mcctl_json(&eps, &["crypt", "slots", "list", "--json"], "");
    assert_eq!(slots.as_array().map(Vec::len), Some(2), "{slots}");

    // A restart unseals itself from the file; the data is readable.
    drop(cp);
    let cp = start(dir.path(), &key, None);
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "unsealed");
    let (code, body) = read_secret(&cp, &admin);
    assert_eq!(
        (code, &body["data"]["pw"]),
        (200, &json!("s3cret")),
        "{body}"
    );

    // A damaged file: sealed, a log line says why; the passphrase unseals.
    drop(cp);
    let mut bytes = std::fs::read(&key).expect("read");
    bytes[7] ^= 0x40;
    std::fs::write(&key, &bytes).expect("damage");
    let log = dir.path().join("mcd.log");
    let cp = start(dir.path(), &key, Some(&log));
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("auto-unseal from the key file failed")
            && text.contains("matches no keyfile slot"),
        "{text}"
    );
    let (code, body) = read_secret(&cp, &admin);
    assert_eq!((code, body), (503, json!({"error": "sealed"})));
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(read_secret(&cp, &admin).0, 200);

    // A removed file: sealed, and said so.
    drop(cp);
    std::fs::remove_file(&key).expect("remove");
    let cp = start(dir.path(), &key, Some(&log));
    assert_eq!(state(&cp), "sealed");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("cannot read it"), "{text}");
}
