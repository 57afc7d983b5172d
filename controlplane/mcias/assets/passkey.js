// MCIAS web UI: passkey sign-in and registration (WebAuthn JSON forms,
// PublicKeyCredential.parse*OptionsFromJSON / toJSON). Served from /ui/assets/
// under the UI's CSP (script-src 'self', connect-src 'self').
"use strict";
(function () {
  // Drops null members: WebIDL refuses null where a dictionary or list is expected.
  function clean(v) {
    if (Array.isArray(v)) return v.map(clean);
    if (v && typeof v === "object") {
      const out = {};
      for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = clean(x);
      return out;
    }
    return v;
  }
  function csrf() {
    const m = document.querySelector("meta[name=csrf-token]");
    return m ? m.content : "";
  }
  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf() },
      body: JSON.stringify(body),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }
  function fail(e) {
    const out = document.getElementById("passkey-error");
    if (out) out.textContent = String((e && e.message) || e);
  }
  function value(name) {
    const el = document.querySelector(`input[name=${name}]`);
    return el ? el.value : "";
  }

  const login = document.getElementById("passkey-login");
  if (login) {
    login.addEventListener("click", async () => {
      try {
        const begin = await post("/v1/auth/passkey/begin", { username: value("username") });
        const options = PublicKeyCredential.parseRequestOptionsFromJSON(clean(begin.options.publicKey));
        const cred = await navigator.credentials.get({ publicKey: options });
        const done = await post("/ui/login/passkey", {
          challenge_id: begin.challenge_id,
          credential: cred.toJSON(),
          return_to: value("return_to"),
        });
        window.location.assign(done.redirect);
      } catch (e) {
        fail(e);
      }
    });
  }

  const add = document.getElementById("passkey-add");
  if (add) {
    add.addEventListener("click", async () => {
      try {
        const begin = await post("/ui/passkeys/begin", { password: value("passkey_password") });
        const options = PublicKeyCredential.parseCreationOptionsFromJSON(clean(begin.options.publicKey));
        const cred = await navigator.credentials.create({ publicKey: options });
        await post("/ui/passkeys/finish", {
          challenge_id: begin.challenge_id,
          credential: cred.toJSON(),
          name: value("passkey_name"),
        });
        window.location.assign("/ui/");
      } catch (e) {
        fail(e);
      }
    });
  }
})();
