#!/usr/bin/python3
"""A standard OIDC relying party (Authlib, Debian's python3-authlib) against MCIAS.

Runs the authorization code flow with PKCE S256: discovery, the browser part
(login form and redirects, driven by a plain HTTP session holding the cookie),
the code exchange (client_secret_basic or client_secret_post), id_token
verification against the JWKS (signature, iss, aud, exp, iat, nonce) and
userinfo. Prints one JSON line with what it verified; exits non-zero on any
failure. Started by controlplane/metacircular/tests/it/controlplane/iam/sso.rs;
talks to 127.0.0.1 only.

usage: rp.py ISSUER CA_CERT CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD AUTH_METHOD
"""
import base64
import html.parser
import json
import secrets
import sys
import time
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


class Inputs(html.parser.HTMLParser):
    """The named inputs of the first form of a page."""

    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def main():
    issuer, ca, client_id, secret, redirect_uri, user, password, method = sys.argv[1:9]
    started = time.monotonic()
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", verify=ca, timeout=10).json()
    assert meta["issuer"] == issuer, meta
    assert "S256" in meta["code_challenge_methods_supported"]
    assert {"RS256", "EdDSA"} <= set(meta["id_token_signing_alg_values_supported"])

    rp = OAuth2Session(
        client_id,
        secret,
        scope="openid profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )
    # Trust only the dev CA (a session's `verify` loses to REQUESTS_CA_BUNDLE otherwise).
    rp.trust_env = False
    rp.verify = ca
    verifier = generate_token(64)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    # The browser: no session yet, so MCIAS shows its login page, then
    # sends the browser back to the authorization request, then to the client.
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = ca
    r = browser.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    form = Inputs()
    form.feed(r.text)
    assert form.action == "/ui/login", form.action
    form.fields.update(username=user, password=password)
    r = browser.post(f"{issuer}{form.action}", data=form.fields, allow_redirects=False, timeout=10)
    assert r.status_code == 303, (r.status_code, r.text)
    cookie = r.headers["set-cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attr in cookie, cookie
    r = browser.get(urllib.parse.urljoin(issuer, r.headers["location"]), allow_redirects=False, timeout=10)
    assert r.status_code == 303, (r.status_code, r.text)
    callback = r.headers["location"]
    assert callback.startswith(redirect_uri + "?"), callback

    token = rp.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    jwks = requests.get(meta["jwks_uri"], verify=ca, timeout=10).json()
    kinds = sorted({k["kty"] for k in jwks["keys"]})
    assert kinds == ["OKP", "RSA"], kinds
    claims = jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [issuer]}, "aud": {"values": [client_id]}},
        claims_params={"nonce": nonce, "client_id": client_id},
    )
    claims.validate(leeway=5)
    h = token["id_token"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    info = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    assert info["sub"] == claims["sub"], (info, dict(claims))
    print(
        json.dumps(
            {
                "alg": header["alg"],
                "kid": header["kid"],
                "sub": claims["sub"],
                "preferred_username": claims["preferred_username"],
                "nonce_ok": claims["nonce"] == nonce,
                "userinfo": info,
                "access_token": token["access_token"],
                "expires_in": token["expires_in"],
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
