#!/usr/bin/env python3
"""One hvac script for Metacrypt's Vault facade and for OpenBao (`bao server -dev`).

Usage: vault_hvac.py URL TOKEN [CA_FILE]

Prints one JSON record per step: {"step", "result"} where result holds the
observable outcome (chosen values, or {"raises": <hvac exception class>}).
Nothing server-specific (ciphertexts, times, request ids) is printed, so
the two transcripts are equal when the servers behave alike; the Rust test
`vault_facade_matches_openbao` diffs them. A step listed in DIFFERENCES is
a deliberate difference: its record carries the reason and its result is
not compared (it must still not raise on either side unless it says so).
"""

import base64
import json
import sys
import time

import hvac
from hvac import exceptions

# Deliberate differences from Vault/OpenBao, one line each (design note
# "Deliberate differences from Vault").
DIFFERENCES = {
    "lookup_self": "identity is MCIAS: lookup-self describes the MCIAS principal, not a Vault token",
    "read_rsa": "RSA keys sign and verify only: RSA encryption is not offered",
}

URL, TOKEN = sys.argv[1], sys.argv[2]
CA = sys.argv[3] if len(sys.argv) > 3 else True
client = hvac.Client(url=URL, token=TOKEN, verify=CA)
transit = client.secrets.transit
kv = client.secrets.kv.v2


def b64(s):
    return base64.b64encode(s.encode()).decode()


def record(step, fn):
    try:
        result = fn()
    except exceptions.VaultError as e:
        result = {"raises": type(e).__name__}
    except Exception as e:  # a broken step still leaves a record to compare
        result = {"crashed": type(e).__name__}
    out = {"step": step, "result": result}
    if step in DIFFERENCES:
        out["differs"] = DIFFERENCES[step]
    print(json.dumps(out, sort_keys=True), flush=True)
    return result


def st(r):
    """The status of a call: hvac returns the JSON body (200) or the response."""
    return getattr(r, "status_code", 200)


def data(r):
    return r["data"]


def prefix(text):
    """`vault:v2:…` → `vault:v2:` (the body differs between servers)."""
    parts = text.split(":")
    return ":".join(parts[:2]) + ":"


def key_view(name):
    d = data(transit.read_key(name))
    return {
        "type": d["type"],
        "latest_version": d["latest_version"],
        "min_decryption_version": d["min_decryption_version"],
        "min_encryption_version": d["min_encryption_version"],
        "min_available_version": d.get("min_available_version"),
        "deletion_allowed": d["deletion_allowed"],
        "exportable": d["exportable"],
        "derived": d["derived"],
        "supports_encryption": d["supports_encryption"],
        "supports_decryption": d["supports_decryption"],
        "supports_signing": d["supports_signing"],
        "supports_derivation": d["supports_derivation"],
        "versions": sorted(d["keys"].keys()),
    }


# --- auth and sys ---------------------------------------------------------
record("is_authenticated", lambda: client.is_authenticated())
record(
    "is_authenticated_bad_token",
    lambda: hvac.Client(url=URL, token="not-a-token", verify=CA).is_authenticated(),
)
record("health", lambda: {k: client.sys.read_health_status(method="GET")[k] for k in ("initialized", "sealed", "standby")})
record("seal_status", lambda: {k: client.seal_status[k] for k in ("type", "initialized", "sealed")})
record("lookup_self", lambda: sorted(data(client.auth.token.lookup_self()).keys()))
record("enable_transit", lambda: st(client.sys.enable_secrets_engine("transit", path="transit")))

# --- transit --------------------------------------------------------------
KEYS = {
    "aes": "aes256-gcm96",
    "chacha": "chacha20-poly1305",
    "ed": "ed25519",
    "p256": "ecdsa-p256",
    "rsa": "rsa-2048",
}
for name, kind in KEYS.items():
    record(f"create_{name}", lambda name=name, kind=kind: st(transit.create_key(name, key_type=kind)))
    record(f"read_{name}", lambda name=name: key_view(name))
record("list_keys", lambda: sorted(data(transit.list_keys())["keys"]))
record("read_missing_key", lambda: transit.read_key("missing"))
# hvac checks key types itself: the raw call reaches the server.
record("create_unknown_type", lambda: st(client.adapter.post("/v1/transit/keys/bad", json={"type": "aes512-nope"})))

CT = {}


def enc_dec(name):
    ct = data(transit.encrypt_data(name, plaintext=b64("hello " + name)))["ciphertext"]
    CT[name] = ct
    pt = data(transit.decrypt_data(name, ciphertext=ct))["plaintext"]
    return {"prefix": prefix(ct), "roundtrip": base64.b64decode(pt).decode()}


for name in ("aes", "chacha"):
    record(f"encrypt_decrypt_{name}", lambda name=name: enc_dec(name))


def batch_encrypt():
    items = [{"plaintext": b64("one"), "reference": "r1"}, {"plaintext": b64("two"), "reference": "r2"}]
    res = data(transit.encrypt_data("aes", batch_input=items))["batch_results"]
    CT["batch"] = [r["ciphertext"] for r in res]
    return [{"prefix": prefix(r["ciphertext"]), "reference": r.get("reference"), "error": r.get("error")} for r in res]


record("batch_encrypt", batch_encrypt)


def batch_decrypt():
    items = [{"ciphertext": c} for c in CT.get("batch", [])]
    res = data(transit.decrypt_data("aes", batch_input=items))["batch_results"]
    return [base64.b64decode(r["plaintext"]).decode() for r in res]


record("batch_decrypt", batch_decrypt)
record(
    "batch_decrypt_with_bad_item",
    lambda: transit.decrypt_data("aes", batch_input=[{"ciphertext": CT["aes"]}, {"ciphertext": "vault:v1:!!!"}]),
)
record("decrypt_malformed", lambda: transit.decrypt_data("aes", ciphertext="not-a-ciphertext"))
record("decrypt_wrong_key_type", lambda: transit.decrypt_data("ed", ciphertext=CT["aes"]))
record("rotate_aes", lambda: st(transit.rotate_key("aes")))
record("read_aes_rotated", lambda: key_view("aes"))
record("encrypt_after_rotate", lambda: prefix(data(transit.encrypt_data("aes", plaintext=b64("x")))["ciphertext"]))


def rewrap():
    ct = data(transit.rewrap_data("aes", ciphertext=CT["aes"]))["ciphertext"]
    pt = data(transit.decrypt_data("aes", ciphertext=ct))["plaintext"]
    CT["aes_v2"] = ct
    return {"prefix": prefix(ct), "roundtrip": base64.b64decode(pt).decode()}


record("rewrap", rewrap)
record("config_min_decryption_2", lambda: st(transit.update_key_configuration("aes", min_decryption_version=2)))
record("decrypt_v1_refused", lambda: transit.decrypt_data("aes", ciphertext=CT["aes"]))
record("rewrap_v1_refused", lambda: transit.rewrap_data("aes", ciphertext=CT["aes"]))
record("decrypt_v2_still_ok", lambda: base64.b64decode(data(transit.decrypt_data("aes", ciphertext=CT["aes_v2"]))["plaintext"]).decode())
record("config_min_encryption_2", lambda: st(transit.update_key_configuration("aes", min_encryption_version=2)))
record("trim_1", lambda: st(transit.trim_key("aes", min_version=2)))
record("read_aes_trimmed", lambda: key_view("aes"))
record("trim_beyond_min_refused", lambda: st(transit.trim_key("aes", min_version=3)))


def sign_verify(name, **kw):
    sig = data(transit.sign_data(name, hash_input=b64("signed text"), **kw))["signature"]
    good = data(transit.verify_signed_data(name, hash_input=b64("signed text"), signature=sig, **kw))["valid"]
    bad = data(transit.verify_signed_data(name, hash_input=b64("other text"), signature=sig, **kw))["valid"]
    return {"prefix": prefix(sig), "valid": good, "tampered_valid": bad}


record("sign_verify_ed25519", lambda: sign_verify("ed"))
record("sign_verify_p256", lambda: sign_verify("p256"))
record("sign_verify_p256_sha384", lambda: sign_verify("p256", hash_algorithm="sha2-384"))
record("sign_verify_rsa_pkcs1", lambda: sign_verify("rsa", signature_algorithm="pkcs1v15"))
record("sign_with_aes_refused", lambda: transit.sign_data("aes", hash_input=b64("x")))


def batch_sign():
    items = [{"input": b64("a")}, {"input": b64("b")}]
    res = data(transit.sign_data("ed", batch_input=items))["batch_results"]
    ver = [{"input": b64(t), "signature": r["signature"]} for t, r in zip("ab", res)]
    # hvac's verify_signed_data takes no batch_input: the raw call.
    out = data(client.adapter.post("/v1/transit/verify/ed", json={"batch_input": ver}))["batch_results"]
    return [r["valid"] for r in out]


record("batch_sign_verify", batch_sign)


def hmac_verify(name, algorithm=None):
    mac = data(transit.generate_hmac(name, hash_input=b64("mac me"), algorithm=algorithm))["hmac"]
    kw = {"hash_algorithm": algorithm} if algorithm else {}
    good = data(transit.verify_signed_data(name, hash_input=b64("mac me"), hmac=mac, **kw))["valid"]
    bad = data(transit.verify_signed_data(name, hash_input=b64("mac you"), hmac=mac, **kw))["valid"]
    return {"prefix": prefix(mac), "valid": good, "tampered_valid": bad}


record("hmac_verify", lambda: hmac_verify("aes"))
record("hmac_verify_sha512_on_aes", lambda: hmac_verify("chacha", algorithm="sha2-512"))


def datakey(kind):
    d = data(transit.generate_data_key("aes", key_type=kind, bits=256))
    out = {"fields": sorted(k for k in d if k in ("ciphertext", "plaintext", "key_version")), "prefix": prefix(d["ciphertext"])}
    pt = data(transit.decrypt_data("aes", ciphertext=d["ciphertext"]))["plaintext"]
    out["key_bytes"] = len(base64.b64decode(pt))
    if "plaintext" in d:
        out["same_key"] = pt == d["plaintext"]
    return out


record("datakey_plaintext", lambda: datakey("plaintext"))
record("datakey_wrapped", lambda: datakey("wrapped"))
record("datakey_bad_bits", lambda: st(client.adapter.post("/v1/transit/datakey/plaintext/aes", json={"bits": 100})))


def derived():
    transit.create_key("derived", key_type="aes256-gcm96", derived=True)
    ctx = b64("tenant-1")
    ct = data(transit.encrypt_data("derived", plaintext=b64("d"), context=ctx))["ciphertext"]
    pt = data(transit.decrypt_data("derived", ciphertext=ct, context=ctx))["plaintext"]
    return {"prefix": prefix(ct), "roundtrip": base64.b64decode(pt).decode(), "derived": key_view("derived")["derived"]}


record("derived_key_with_context", derived)
record("derived_key_without_context_refused", lambda: transit.encrypt_data("derived", plaintext=b64("d")))
record(
    "derived_key_wrong_context_refused",
    lambda: transit.decrypt_data(
        "derived",
        ciphertext=data(transit.encrypt_data("derived", plaintext=b64("d"), context=b64("a")))["ciphertext"],
        context=b64("b"),
    ),
)
record("delete_refused", lambda: st(transit.delete_key("chacha")))
record("allow_deletion", lambda: st(transit.update_key_configuration("chacha", deletion_allowed=True)))
record("delete_allowed", lambda: st(transit.delete_key("chacha")))
record("read_deleted_key", lambda: transit.read_key("chacha"))

# --- kv v2 (the `secret` mount both dev servers have) ---------------------
P = "hvac/app"


def write(secret, cas=None):
    d = data(kv.create_or_update_secret(P, secret=secret, cas=cas))
    return {"version": d["version"], "destroyed": d["destroyed"], "deletion_time": d["deletion_time"]}


record("kv_put_cas0", lambda: write({"user": "a", "n": 1}, cas=0))
record("kv_put_cas0_again_conflict", lambda: write({"user": "b"}, cas=0))
record("kv_put_cas_wrong_conflict", lambda: write({"user": "b"}, cas=5))
record("kv_put_cas1", lambda: write({"user": "b", "n": 2}, cas=1))
record("kv_put_no_cas", lambda: write({"user": "c", "n": 3}))


def read(version=None, **kw):
    d = data(kv.read_secret_version(P, version=version, **kw))
    m = d["metadata"]
    return {"data": d["data"], "version": m["version"], "destroyed": m["destroyed"], "deleted": m["deletion_time"] != ""}


record("kv_get_latest", lambda: read(raise_on_deleted_version=True))
record("kv_get_v1", lambda: read(1, raise_on_deleted_version=True))
record("kv_get_missing_version", lambda: read(42, raise_on_deleted_version=True))
record("kv_get_missing_path", lambda: kv.read_secret_version("hvac/none", raise_on_deleted_version=True))


def meta():
    d = data(kv.read_secret_metadata(P))
    return {
        "current_version": d["current_version"],
        "oldest_version": d["oldest_version"],
        "max_versions": d["max_versions"],
        "cas_required": d["cas_required"],
        "custom_metadata": d["custom_metadata"],
        "versions": {k: {"destroyed": v["destroyed"], "deleted": v["deletion_time"] != ""} for k, v in sorted(d["versions"].items())},
    }


record("kv_metadata", meta)
record("kv_delete_latest", lambda: st(kv.delete_latest_version_of_secret(P)))
record("kv_get_deleted_raises", lambda: read(raise_on_deleted_version=True))
record("kv_get_deleted_no_raise", lambda: read(raise_on_deleted_version=False))
record("kv_undelete", lambda: st(kv.undelete_secret_versions(P, versions=[3])))
record("kv_get_undeleted", lambda: read(raise_on_deleted_version=True))
record("kv_delete_v1", lambda: st(kv.delete_secret_versions(P, versions=[1])))
record("kv_destroy_v2", lambda: st(kv.destroy_secret_versions(P, versions=[2])))
record("kv_get_destroyed_no_raise", lambda: read(2, raise_on_deleted_version=False))
record("kv_metadata_after", meta)
record(
    "kv_update_metadata",
    lambda: kv.update_metadata(P, max_versions=5, cas_required=True, custom_metadata={"team": "crypt"}).status_code,
)
record("kv_metadata_updated", meta)
record("kv_put_cas_required_refused", lambda: write({"x": 1}))
record("kv_put_cas_required_ok", lambda: write({"x": 1}, cas=3))
record("kv_put_other", lambda: kv.create_or_update_secret("hvac/dir/leaf", secret={"y": 2})["data"]["version"])
record("kv_list_hvac", lambda: sorted(data(kv.list_secrets("hvac"))["keys"]))
record("kv_list_missing", lambda: kv.list_secrets("hvac/nothing-here"))
record("kv_delete_metadata", lambda: st(kv.delete_metadata_and_all_versions(P)))
record("kv_metadata_gone", lambda: kv.read_secret_metadata(P))
record("kv_list_after_delete", lambda: sorted(data(kv.list_secrets("hvac"))["keys"]))

# --- kv delete_version_after: versions read as deleted once it passed ----
E = "hvac/expiring"


def dva_write():
    d = data(kv.create_or_update_secret(E, secret={"t": 1}))
    return {"version": d["version"], "deletion_time_set": d["deletion_time"] != ""}


def dva_read(version):
    d = data(kv.read_secret_version(E, version=version, raise_on_deleted_version=False))
    return {"data": d["data"], "version": d["metadata"]["version"]}


record("kv_dva_set", lambda: kv.update_metadata(E, delete_version_after="1h30m").status_code)
record("kv_dva_read", lambda: data(kv.read_secret_metadata(E))["delete_version_after"])
record("kv_dva_write", dva_write)
record("kv_dva_readable", lambda: dva_read(1))
record("kv_dva_short", lambda: kv.update_metadata(E, delete_version_after="1s").status_code)
record("kv_dva_write_short", dva_write)
time.sleep(2.5)
record("kv_dva_expired", lambda: dva_read(2))
record("kv_dva_older_still_readable", lambda: dva_read(1))
record("kv_dva_bad", lambda: kv.update_metadata(E, delete_version_after="soon"))
record("kv_dva_mount", lambda: st(kv.configure(delete_version_after="2h")))
record("kv_dva_mount_read", lambda: data(kv.read_configuration())["delete_version_after"])
record("kv_dva_mount_reset", lambda: st(kv.configure(delete_version_after="0s")))
