#!/usr/bin/env python3
"""ORAS (the `oras` SDK from PyPI) against MCR: artifacts with a `subject`.

Usage: oras_referrers.py HOST CA_FILE USERNAME PASSWORD MCIAS_TOKEN WORKDIR

Pushes an artifact (`art/app:v1`), two referrers of it (a signature and an
SBOM, their artifactType carried by the config media type, as ORAS does),
and a referrer whose subject was never pushed; lists the referrers API with
and without an `artifactType` filter through the SDK's own authenticated
session; pulls the referrer back with a second client that logs in with a
username and password through the token endpoint. Prints one JSON object of what it saw;
the Rust test `oras_pushes_referrers_and_the_referrers_api_lists_them`
asserts on it. Any client error raises (non-zero exit).
"""

import hashlib
import json
import os
import sys
import urllib.parse

import oras.defaults
import oras.oci
import oras.provider

HOST, CA, USER, PASSWORD, TOKEN, WORK = sys.argv[1:7]
REPO = f"{HOST}/art/app"
SIG = "application/vnd.example.signature.v1"
SBOM = "application/vnd.example.sbom.v1+json"

os.chdir(WORK)
# Pushes carry the MCIAS token as the bearer (the SDK's token mode). oras-py
# keeps the first registry token of a session and fetches another only after
# a 403, so after its pull-scoped HEAD a push would meet 401 insufficient_scope
# with the same token again (as it would against distribution).
reg = oras.provider.Registry(hostname=HOST, tls_verify=CA, auth_backend="token")
reg.auth.set_token_auth(TOKEN)
# Pulls log in with username and password through the token endpoint.
puller = oras.provider.Registry(hostname=HOST, tls_verify=CA, auth_backend="token")
puller.auth.set_basic_auth(USER, PASSWORD)


def write(name, text):
    with open(name, "w", encoding="utf-8") as f:
        f.write(text)
    return name


def push(target, path, artifact_type, subject=None):
    """Pushes one file; the config's media type is the artifactType."""
    config = write(f"config-{path}.json", "{}")
    return reg.push(
        target=target,
        files=[path],
        manifest_config=f"{config}:{artifact_type}",
        subject=subject,
        quiet=True,
    )


def referrers(digest, artifact_type=None):
    url = f"https://{HOST}/v2/art/app/referrers/{digest}"
    if artifact_type:
        url += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
    r = puller.do_request(url, "GET")
    return {
        "status": r.status_code,
        "content_type": r.headers.get("Content-Type"),
        "filters": r.headers.get("OCI-Filters-Applied"),
        "index": r.json(),
    }


seen = {}
app = push(f"{REPO}:v1", write("app.txt", "the application\n"), "application/vnd.example.app")
subject_digest = app.headers["Docker-Content-Digest"]
manifest = puller.get_manifest(f"{REPO}:v1")
subject = oras.oci.Subject.from_manifest(manifest)
# The SDK rebuilds the subject descriptor from the manifest it reads back.
seen["subject"] = {"digest": subject_digest, "sdk_digest": subject.digest, "size": subject.size}

sig = push(f"{REPO}:sig", write("sig.txt", "a signature\n"), SIG, subject)
sbom = push(f"{REPO}:sbom", write("sbom.json", '{"packages": []}\n'), SBOM, subject)
seen["sig"] = {"digest": sig.headers["Docker-Content-Digest"], "oci_subject": sig.headers.get("OCI-Subject")}
seen["sbom"] = {"digest": sbom.headers["Docker-Content-Digest"], "oci_subject": sbom.headers.get("OCI-Subject")}

# A referrer pushed before its subject exists: the spec says it is accepted.
future = hashlib.sha256(b"a manifest pushed later").hexdigest()
early = oras.oci.Subject(oras.defaults.default_manifest_media_type, f"sha256:{future}", 123)
early_push = push(f"{REPO}:early", write("early.txt", "early\n"), SIG, early)
seen["early"] = {"digest": early_push.headers["Docker-Content-Digest"], "subject": early.digest}

seen["referrers"] = referrers(subject_digest)
seen["referrers_sbom"] = referrers(subject_digest, SBOM)
seen["referrers_early"] = referrers(early.digest)

# Pulled back by digest through the SDK: the file's bytes.
os.makedirs("out", exist_ok=True)
files = puller.pull(target=f"{REPO}@{seen['sig']['digest']}", outdir="out")
seen["pulled"] = {os.path.basename(f): open(f, encoding="utf-8").read() for f in files}
print(json.dumps(seen))
