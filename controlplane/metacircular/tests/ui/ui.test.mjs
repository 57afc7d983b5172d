// Headless Chromium (Debian's chromium, driven by playwright-core) uses the
// MCIAS web UI like an admin would: sign in, enrol TOTP, sign out, sign in
// again with password + TOTP (codes from oathtool), create an account on the
// admin page, add a policy rule, ask the policy tester, check that a POST
// without the CSRF token is refused and logout ends the session, then
// register passkeys (Chromium's virtual authenticator) and use them for a
// passwordless sign-in and as a second factor after a password.
// Started by controlplane/metacircular/tests/it/controlplane/iam/ui.rs; talks to
// 127.0.0.1 only.
//
// usage: node ui.test.mjs BASE_URL ADMIN_PASSWORD USER_DATA_DIR
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { launch } from "./browser.mjs";

const [base, adminPassword, userDataDir] = process.argv.slice(2);
const started = Date.now();

function totp(secret, offsetSeconds) {
  const now = new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  return execFileSync("oathtool", ["--totp", "-b", `--now=${now}`, secret]).toString().trim();
}

const { context, page, cspViolations } = await launch(userDataDir);

async function signIn(code) {
  await page.goto(`${base}/ui/`);
  assert.match(page.url(), /\/ui\/login\?return_to=/, "an anonymous visit goes to the login page");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", adminPassword);
  await page.click("#login");
  if (code !== undefined) {
    await page.waitForSelector("input[name=code]");
    await page.fill("input[name=code]", code());
    await page.click("#verify");
  }
  await page.waitForSelector("#whoami");
  assert.equal(await page.textContent("#whoami"), "admin");
}

// 1. Password only; enrol TOTP from the profile page.
await signIn();
const cookies = await context.cookies();
const session = cookies.find((c) => c.name === "__Host-mc_session");
assert.ok(session, "session cookie set");
assert.equal(session.httpOnly, true);
assert.equal(session.secure, true);
assert.equal(session.sameSite, "Strict");
await page.fill("form[action='/ui/totp/enroll'] input[name=password]", adminPassword);
await page.click("#totp-enroll");
const secret = (await page.textContent("#totp-secret")).trim();
assert.match(await page.textContent("#totp-uri"), /^otpauth:\/\/totp\//);
// The previous step's code (accepted with one step of skew), so the login
// below can use the current one: each code works once.
await page.fill("input[name=code]", totp(secret, -30));
await page.click("#totp-confirm");
await page.waitForSelector("#totp-done");
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);

// 2. Password, then the TOTP step.
await signIn(() => totp(secret, 0));
assert.equal((await page.textContent("#totp-status")).trim(), "enabled");
const session2 = (await context.cookies()).find((c) => c.name === "__Host-mc_session");
assert.notEqual(session2.value, session.value);

// 3. Create an account on the admin page.
await page.click("a[href='/ui/admin/accounts']");
await page.fill("#create-account input[name=username]", "bob");
await page.fill("#create-account input[name=password]", "bob's long password");
await page.selectOption("#create-account select[name=role]", "user");
await page.click("#create-account button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#note"), /Created account bob/);
const bobRow = page.locator("#accounts tr[data-username=bob]");
assert.equal((await bobRow.locator("td.status").textContent()).trim(), "active");

// 4. A deny rule for users logging in to "mcr".
await page.click("a[href='/ui/admin/policy']");
await page.fill("#create-rule input[name=priority]", "10");
await page.selectOption("#create-rule select[name=effect]", "deny");
await page.fill("#create-rule input[name=description]", "no registry for users");
await page.fill("#create-rule input[name=roles]", "user");
await page.fill("#create-rule input[name=service_names]", "mcr");
await page.click("#create-rule button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#rules"), /no registry for users/);

// 5. The policy tester (htmx swaps the decision in place).
await page.click("a[href='/ui/admin/tester']");
const testerUrl = page.url();
async function explain(service) {
  await page.fill("#tester input[name=account]", "bob");
  await page.fill("#tester input[name=service_name]", service);
  await page.click("#explain");
  const answer = `#result [data-service='${service}']`;
  await page.waitForSelector(`${answer} #decision`);
  return {
    decision: (await page.textContent(`${answer} #decision`)).trim(),
    rule: (await page.textContent(`${answer} #rule`)).trim(),
  };
}
const denied = await explain("mcr");
assert.equal(denied.decision, "DENY");
assert.notEqual(denied.rule, "default deny");
const allowed = await explain("grafana");
assert.equal(allowed.decision, "ALLOW");
assert.notEqual(allowed.rule, denied.rule);
assert.equal(page.url(), testerUrl, "htmx answered in place");

// 6. A state-changing POST without the CSRF token is refused (and changes nothing).
const forged = await page.request.post(`${base}/ui/admin/accounts`, {
  form: { username: "mallory", password: "mallory's long password", role: "admin" },
  maxRedirects: 0,
});
assert.equal(forged.status(), 403);
await page.click("a[href='/ui/admin/accounts']");
assert.equal(await page.locator("#accounts tr[data-username=mallory]").count(), 0);

// 7. Passkeys, with Chromium's virtual authenticator (CTAP2, user verification).
const cdp = await context.newCDPSession(page);
await cdp.send("WebAuthn.enable");
await cdp.send("WebAuthn.addVirtualAuthenticator", {
  options: {
    protocol: "ctap2",
    transport: "internal",
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
    automaticPresenceSimulation: true,
  },
});
async function addPasskey(password, name) {
  await page.goto(`${base}/ui/`);
  await page.fill("input[name=passkey_password]", password);
  await page.fill("input[name=passkey_name]", name);
  await page.click("#passkey-add");
  await page.waitForSelector(`#passkeys td.name:text-is("${name}")`);
}
await addPasskey(adminPassword, "admin laptop");

// 8. Logout ends the session: the old cookie no longer opens a page.
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);
const replay = await page.request.get(`${base}/ui/`, {
  headers: { cookie: `__Host-mc_session=${session2.value}` },
  maxRedirects: 0,
});
assert.equal(replay.status(), 303);

// 9. Passwordless and username-less: the (discoverable) passkey names the account.
await page.fill("input[name=username]", "");
await page.click("#passkey-login");
await page.waitForSelector("#whoami");
assert.equal(await page.textContent("#whoami"), "admin");
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);

// 10. A passkey as second factor: bob (no TOTP) registers one; from then on
// his password leads to the passkey step, not into the UI.
const bobPassword = "bob's long password";
async function passwordLogin(user, password) {
  await page.goto(`${base}/ui/login`);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("#login");
}
await passwordLogin("bob", bobPassword);
await page.waitForSelector("#whoami");
await addPasskey(bobPassword, "bob phone");
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);
await passwordLogin("bob", bobPassword);
await page.waitForSelector("#passkey-required");
await page.click("#passkey-login");
await page.waitForSelector("#whoami");
assert.equal(await page.textContent("#whoami"), "bob");
assert.deepEqual(cspViolations, [], "no CSP violations");
await context.close();
console.log(JSON.stringify({ ok: true, denied_by: denied.rule, seconds: (Date.now() - started) / 1000 }));
