"""hvac's PKI calls against Metacrypt's Vault facade (run by vault_pki.rs).

Usage: vault_pki_hvac.py URL ADMIN_TOKEN USER_TOKEN CA_FILE OUT_DIR

Mounts a pki engine at `pki_int` through sys/mounts, generates a root,
writes and reads a role, issues a certificate, signs OUT_DIR/req.csr,
lists and reads certificates, revokes one, reads the CA, chain and CRL,
tidies, and tries an issue as USER_TOKEN (no policy rule). Writes what it
got to OUT_DIR (cert.pem, key.pem, signed.pem, ca.pem, chain.pem, crl.pem)
and prints one JSON object with the answers the test checks.
"""

import json
import pathlib
import sys

import hvac
import requests

url, admin_token, user_token, ca_file, out = sys.argv[1:6]
out = pathlib.Path(out)
MOUNT = "pki_int"
client = hvac.Client(url=url, token=admin_token, verify=ca_file)
pki = client.secrets.pki
record = {"hvac": getattr(hvac, "__version__", "")}


def write(name, text):
    (out / name).write_text(text if text.endswith("\n") else text + "\n")


client.sys.enable_secrets_engine("pki", path=MOUNT)
record["mounted"] = MOUNT + "/" in client.sys.list_mounted_secrets_engines()["data"]
root = pki.generate_root(
    "internal",
    "Metacrypt hvac test root",
    extra_params={"key_type": "ec", "key_bits": 256, "ttl": "8760h"},
    mount_point=MOUNT,
)
record["root_keys"] = sorted(root["data"].keys())

pki.create_or_update_role(
    "web",
    extra_params={
        "allowed_domains": "example.test",
        "allow_subdomains": True,
        "key_type": "ec",
        "key_bits": 256,
        "ttl": "1h",
        "max_ttl": "72h",
    },
    mount_point=MOUNT,
)
record["role"] = pki.read_role("web", mount_point=MOUNT)["data"]
record["roles"] = pki.list_roles(mount_point=MOUNT)["data"]["keys"]

issued = pki.generate_certificate(
    "web",
    "www.example.test",
    extra_params={"alt_names": "api.example.test", "ttl": "2h"},
    mount_point=MOUNT,
)
data = issued["data"]
record["issue_keys"] = sorted(data.keys())
record["issue_lease_id"] = issued["lease_id"]
record["private_key_type"] = data["private_key_type"]
record["issued_serial"] = data["serial_number"]
record["ca_chain_len"] = len(data["ca_chain"])
record["issuing_ca_is_chain_head"] = data["issuing_ca"] == data["ca_chain"][0]
write("cert.pem", data["certificate"])
write("key.pem", data["private_key"])
write("issuing_ca.pem", data["issuing_ca"])

signed = pki.sign_certificate(
    "web",
    (out / "req.csr").read_text(),
    "csr.example.test",
    mount_point=MOUNT,
)
record["sign_keys"] = sorted(signed["data"].keys())
record["signed_serial"] = signed["data"]["serial_number"]
write("signed.pem", signed["data"]["certificate"])

try:
    pki.generate_certificate("web", "www.elsewhere.test", mount_point=MOUNT)
    record["outside"] = "issued"
except hvac.exceptions.InvalidRequest as e:
    record["outside"] = {"class": "InvalidRequest", "errors": e.errors}

record["certs"] = pki.list_certificates(mount_point=MOUNT)["data"]["keys"]
cert = pki.read_certificate(data["serial_number"], mount_point=MOUNT)["data"]
record["read_cert_matches"] = cert["certificate"].strip() == data["certificate"].strip()
record["read_revocation_time"] = cert["revocation_time"]

revoked = pki.revoke_certificate(data["serial_number"], mount_point=MOUNT)["data"]
record["revoke_keys"] = sorted(revoked.keys())
record["revoked_state"] = revoked.get("state")
cert = pki.read_certificate(data["serial_number"], mount_point=MOUNT)["data"]
record["read_revoked_time_set"] = cert["revocation_time"] > 0

write("ca.pem", pki.read_ca_certificate(mount_point=MOUNT))
write("chain.pem", pki.read_ca_certificate_chain(mount_point=MOUNT))
write("crl.pem", pki.read_crl(mount_point=MOUNT))
tidy = pki.tidy(mount_point=MOUNT)  # 202: hvac hands back the response
record["tidy"] = {"status": tidy.status_code, "warnings": tidy.json()["warnings"]}

# A caller without rules: hvac raises Forbidden, and the body is Vault's.
user = hvac.Client(url=url, token=user_token, verify=ca_file)
try:
    user.secrets.pki.generate_certificate("web", "x.example.test", mount_point=MOUNT)
    record["forbidden"] = "issued"
except hvac.exceptions.Forbidden as e:
    record["forbidden"] = {"class": "Forbidden", "errors": e.errors}
raw = requests.post(
    f"{url}/v1/{MOUNT}/issue/web",
    headers={"X-Vault-Token": user_token},
    json={"common_name": "x.example.test"},
    verify=ca_file,
)
record["forbidden_raw"] = {"status": raw.status_code, "body": raw.json()}
try:
    user.secrets.pki.list_certificates(mount_point=MOUNT)
    record["forbidden_list"] = "listed"
except hvac.exceptions.Forbidden:
    record["forbidden_list"] = "Forbidden"
# The CA is public, with or without a token.
record["user_reads_ca"] = user.secrets.pki.read_ca_certificate(mount_point=MOUNT).startswith(
    "-----BEGIN CERTIFICATE-----"
)

print(json.dumps(record))
