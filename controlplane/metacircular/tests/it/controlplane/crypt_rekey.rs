//! Slot changes end to end with `mcctl crypt slots` (secrets on stdin, as
//! piped; a terminal reads them without echo) against `mcd controlplane`:
//! a new passphrase (the old one is refused after a restart, the new one
//! unseals), a Shamir re-split from three current shares (old shares
//! refused, two new ones unseal), and slot removal that never takes the last.

use serde_json::json;

use super::crypt::{
    PASSPHRASE, endpoints, mcctl, mcctl_init_shamir, mcctl_json, mcctl_login, shares_in, start,
    state, unseal,
};

const NEW: &str = "a brand new metacrypt passphrase";

#[test]
fn crypt_passphrase_change_reshare_and_slot_removal_with_mcctl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let eps = endpoints(dir.path(), &cp);
    mcctl_login(&eps, &cp);
    let (_, old) = mcctl_init_shamir(&eps, 5, 3, true);

    // A wrong current passphrase: refused, non-zero exit, nothing changes.
    let out = mcctl(
        &eps,
        &["crypt", "slots", "change-passphrase", "--json"],
        &format!("not the passphrase\n{NEW}\n"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slot = mcctl_json(
        &eps,
        &["crypt", "slots", "change-passphrase", "--json"],
        &format!("{PASSPHRASE}\n{NEW}\n"),
    );
    assert_eq!(slot["kind"], "passphrase", "{slot}");
    let split = mcctl_json(
        &eps,
        &[
            "crypt",
            "slots",
            "reshare",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--with-shares",
            "3",
            "--json",
        ],
        &format!("{}\n{}\n{}\n", old[4], old[0], old[2]),
    );
    let new = shares_in(&split);
    assert_eq!(new.len(), 3, "{split}");

    // After a restart the old passphrase and the old shares are refused.
    drop(cp);
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 403, "{body}");
    let (code, body) = unseal(&cp, &admin, json!({"share": old[1]}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("another set")),
        "{body}"
    );
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": NEW}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(state(&cp), "unsealed");
    let (code, _) = cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None);
    assert_eq!(code, 200);
    for s in &new[..2] {
        let (code, body) = unseal(&cp, &admin, json!({"share": s}));
        assert_eq!(code, 200, "{body}");
    }
    assert_eq!(state(&cp), "unsealed");

    // Removal over REST: the Shamir slot goes; the last slot stays.
    let (code, slots) = cp.call("GET", "/v1/crypt/sys/barrier/slots", Some(&admin), None);
    assert_eq!(code, 200, "{slots}");
    let id_of = |kind: &str| {
        slots["slots"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["kind"] == kind))
            .and_then(|s| s["id"].as_str())
            .expect("slot")
            .to_owned()
    };
    let (shamir, pass) = (id_of("shamir"), id_of("passphrase"));
    let remove = |id: &str| {
        cp.call(
            "DELETE",
            &format!("/v1/crypt/sys/barrier/slots/{id}"),
            Some(&admin),
            Some(json!({"passphrase": NEW})),
        )
    };
    let (code, body) = remove(&shamir);
    assert_eq!(code, 204, "{body}");
    let (code, body) = remove(&pass);
    assert_eq!(code, 409, "{body}");
    let (code, body) = remove("nope");
    assert_eq!(code, 404, "{body}");
    let eps = endpoints(dir.path(), &cp);
    let s = mcctl_json(&eps, &["crypt", "status", "--json"], "");
    assert_eq!(s["slots"], json!(["passphrase"]), "{s}");
}
