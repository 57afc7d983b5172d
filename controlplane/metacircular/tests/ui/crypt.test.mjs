// Headless Chromium (Debian's chromium, driven by playwright-core) uses
// Metacrypt's web UI (/ui/crypt/) like an operator would: sign in as the
// admin (MCIAS's sign-in page, back to Metacrypt), initialise,
// mount a kv engine, write a secret and read it back (escaped), create a
// policy rule and edit it, ask explain, see a POST without the CSRF token
// refused, seal (the KV page shows the sealed notice) and unseal, change the
// passphrase on the Slots page and find it on the audit page; then, as a
// user no rule names, see the 403 page on a KV path.
// Started by controlplane/metacircular/tests/it/controlplane/crypt_ui.rs;
// talks to 127.0.0.1 only.
//
// usage: node crypt.test.mjs BASE_URL ADMIN_PASSWORD BOB_PASSWORD PASSPHRASE USER_DATA_DIR
import assert from "node:assert/strict";
import { launch } from "./browser.mjs";

const [base, adminPassword, bobPassword, passphrase, userDataDir] = process.argv.slice(2);
const started = Date.now();

const { context, page, cspViolations } = await launch(userDataDir);

async function signIn(username, password) {
  await page.goto(`${base}/ui/crypt/`);
  assert.match(page.url(), /\/ui\/login\?return_to=/, "an anonymous visit goes to the login page");
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("#login");
  await page.waitForURL(/\/ui\/crypt\/$/);
  assert.equal(await page.textContent("#whoami"), username);
}

// 1. The admin signs in and lands on Metacrypt's status: uninitialised.
await signIn("admin", adminPassword);
assert.equal(await page.textContent("#state"), "uninitialized");

// 2. Initialise (init leaves it unsealed; unsealing is step 7).
await page.fill("#init input[name=passphrase]", passphrase);
await page.click("#init button[type=submit]");
await page.waitForSelector("#note");
assert.equal(await page.textContent("#state"), "unsealed");

// 3. Mount a kv engine.
await page.click("a[href='/ui/crypt/admin/mounts']");
await page.fill("#new-mount input[name=name]", "secret");
await page.selectOption("#new-mount select[name=type]", "kv");
await page.click("#new-mount button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#mounts"), /secret/);

// 4. Write a secret in the KV browser and read it back (a value is user data: escaped).
await page.click("#mounts a[href='/ui/crypt/kv/secret']");
await page.fill("#kv-write input[name=path]", "app/db");
await page.fill("#kv-write textarea[name=data]", '{"pw": "<b>s3cret</b>"}');
await page.click("#kv-write button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#note"), /Saved version 1/);
assert.equal(await page.textContent("#current"), "1");
await page.click("#kv-versions button:text('Show value')");
await page.waitForSelector("#kv-value");
assert.equal(await page.textContent("#kv-value code"), "<b>s3cret</b>");
assert.equal(await page.locator("#kv-value b").count(), 0, "no markup from the value");

// 5. A policy rule: created, listed, edited, explained.
await page.click("a[href='/ui/crypt/admin/policy']");
await page.fill("#rule-form input[name=description]", "team reads");
await page.fill("#rule-form input[name=paths]", "secret/data/team/*");
await page.check("#rule-form input[name=capabilities][value=read]");
await page.fill("#rule-form input[name=roles]", "user");
await page.click("#save-rule");
await page.waitForSelector("#note");
const row = page.locator("#rules tr.rule", { hasText: "team reads" });
assert.equal(await row.count(), 1, "the new rule is listed");
await row.locator("td a").click();
await page.waitForSelector("#rule-form");
await page.fill("#rule-form input[name=description]", "team reads, edited");
await page.click("#save-rule");
await page.waitForSelector("#note");
assert.match(await page.textContent("#note"), /Rule saved/);
assert.equal(await page.locator("#rules tr.rule", { hasText: "team reads, edited" }).count(), 1);
const policyUrl = page.url();
await page.fill("#explain input[name=path]", "secret/data/team/x");
await page.fill("#explain input[name=username]", "bob");
await page.fill("#explain input[name=roles]", "user");
await page.click("#explain button[type=submit]");
await page.waitForSelector("#verdict");
assert.match(await page.textContent("#verdict"), /allow/);
assert.equal(page.url(), policyUrl, "htmx answered in place");

// 6. A state-changing POST without the CSRF token is refused (and changes nothing).
const forged = await page.request.post(`${base}/ui/crypt/admin/seal`, { form: {}, maxRedirects: 0 });
assert.equal(forged.status(), 403);
await page.goto(`${base}/ui/crypt/`);
assert.equal(await page.textContent("#state"), "unsealed");

// 7. Seal: the KV page is the sealed notice; unseal again.
await page.click("#seal button[type=submit]");
await page.waitForSelector("#unseal");
const sealed = await page.goto(`${base}/ui/crypt/kv/secret?path=app/db`);
assert.equal(sealed.status(), 503);
await page.waitForSelector("#sealed");
await page.goto(`${base}/ui/crypt/`);
await page.fill("#unseal input[name=passphrase]", passphrase);
await page.click("#unseal button[type=submit]");
await page.waitForSelector("#note");
assert.equal(await page.textContent("#state"), "unsealed");

// 7b. Slots: a new passphrase, proven with the current one; the audit page lists it.
await page.click("a[href='/ui/crypt/admin/slots']");
await page.fill("#change-passphrase input[name=passphrase]", passphrase);
await page.fill("#change-passphrase input[name=new_passphrase]", `${passphrase} renewed`);
await page.click("#change-passphrase button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#note"), /Passphrase changed/);
await page.click("a[href='/ui/crypt/admin/audit']");
await page.fill("#filter input[name=action]", "barrier.passphrase");
await page.click("#filter button[type=submit]");
await page.waitForSelector("#events");
assert.match(await page.textContent("#events"), /barrier\.passphrase_change/);

// 8. Sign out (MCIAS's page); bob, whom no rule gives app/, sees 403.
await page.goto(`${base}/ui/`);
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);
await signIn("bob", bobPassword);
assert.equal(await page.locator("a[href='/ui/crypt/admin/policy']").count(), 0, "no admin links");
const refused = await page.goto(`${base}/ui/crypt/kv/secret?path=app/db`);
assert.equal(refused.status(), 403);
await page.waitForSelector("#forbidden");
const admin = await page.goto(`${base}/ui/crypt/admin/policy`);
assert.equal(admin.status(), 403, "admin pages need the admin role");

assert.deepEqual(cspViolations, [], "no CSP violations");
await context.close();
console.log(JSON.stringify({ ok: true, seconds: (Date.now() - started) / 1000 }));
