// Headless Chromium (Debian's chromium, driven by playwright-core) uses
// MCR's web UI (/ui/registry/) like an operator would: sign in as the admin
// (MCIAS's sign-in page, back to the registry), find the pushed repository,
// open it and see its tag, start a dry GC run and see it listed; then, as a
// user, see the repository (the seeded rule lets accounts pull) but no
// admin link, and the GC page refused.
// Started by controlplane/metacircular/tests/it/controlplane/mcr/ui.rs;
// talks to 127.0.0.1 only.
//
// usage: node registry.test.mjs BASE_URL ADMIN_PASSWORD BOB_PASSWORD REPO TAG USER_DATA_DIR
import assert from "node:assert/strict";
import { launch } from "./browser.mjs";

const [base, adminPassword, bobPassword, repo, tag, userDataDir] = process.argv.slice(2);
const started = Date.now();

const { context, page, cspViolations } = await launch(userDataDir);

async function signIn(username, password) {
  await page.goto(`${base}/ui/registry/`);
  assert.match(page.url(), /\/ui\/login\?return_to=/, "an anonymous visit goes to the login page");
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("#login");
  await page.waitForURL(/\/ui\/registry\/$/);
  assert.equal(await page.textContent("#whoami"), username);
}

// 1. The admin signs in and sees the pushed repository.
await signIn("admin", adminPassword);
assert.match(await page.textContent("#repositories"), new RegExp(repo));

// 2. Open it: its tag, with a sha256 digest.
await page.click(`#repositories a:text('${repo}')`);
await page.waitForSelector("#tags");
const row = page.locator("#tags tr", { hasText: tag });
assert.equal(await row.count(), 1, "the tag is listed");
assert.match(await row.textContent(), /sha256:[0-9a-f]{64}/);

// 3. A dry GC run from the admin page, listed with its state.
await page.click("a[href='/ui/registry/admin/gc']");
assert.match(await page.textContent("#reclaimable"), /Reclaimable: .* in \d+ blobs/);
await page.check("#gc-start input[name=dry_run]");
await page.click("#gc-start button[type=submit]");
await page.waitForSelector("#note");
assert.match(await page.textContent("#note"), /Started gc-.*\(dry run\)/);
assert.match(await page.textContent("#runs"), /dry run/);

// 4. Sign out (MCIAS's page); bob sees the repository, no admin link, and
//    the GC page refused.
await page.goto(`${base}/ui/`);
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);
await signIn("bob", bobPassword);
assert.match(await page.textContent("#repositories"), new RegExp(repo));
assert.equal(await page.locator("a[href='/ui/registry/admin/gc']").count(), 0, "no admin link");
const refused = await page.goto(`${base}/ui/registry/admin/gc`);
assert.equal(refused.status(), 403, "admin pages need the admin role");

assert.deepEqual(cspViolations, [], "no CSP violations");
await context.close();
console.log(JSON.stringify({ ok: true, seconds: (Date.now() - started) / 1000 }));
