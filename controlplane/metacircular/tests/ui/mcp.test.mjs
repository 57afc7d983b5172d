// Headless Chromium (Debian's chromium, driven by playwright-core) uses
// MCP's web UI (/ui/mcp/) like an operator would: sign in as the admin
// (MCIAS's sign-in page, back to MCP), see the node healthy with its
// heartbeat and resources, the service with its component, image and
// state and its last operation's steps; the tables refresh through htmx;
// then a user (no admin role) is refused the page.
// Started by controlplane/metacircular/tests/it/agent/ops.rs; talks to
// 127.0.0.1 only.
//
// usage: node mcp.test.mjs BASE_URL ADMIN_PASSWORD USER USER_PASSWORD NODE SERVICE IMAGE USER_DATA_DIR
import assert from "node:assert/strict";
import { launch } from "./browser.mjs";

const [base, adminPassword, user, userPassword, node, service, image, userDataDir] =
  process.argv.slice(2);
const started = Date.now();

const { context, page, cspViolations } = await launch(userDataDir);

async function signIn(username, password) {
  await page.goto(`${base}/ui/mcp/`);
  assert.match(page.url(), /\/ui\/login\?return_to=/, "an anonymous visit goes to the login page");
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("#login");
}

// 1. The admin signs in and lands on the MCP page.
await signIn("admin", adminPassword);
await page.waitForURL(/\/ui\/mcp\/$/);
assert.equal(await page.textContent("#whoami"), "admin");

// 2. The node: healthy, a recent heartbeat, its load.
const nodeRow = page.locator(`#nodes tr[data-node='${node}']`);
assert.equal(await nodeRow.count(), 1, "the node is listed");
assert.equal((await nodeRow.locator("td.health").textContent()).trim(), "healthy");
assert.match(await nodeRow.textContent(), /\d+ s ago/);
assert.match(await nodeRow.textContent(), /iB \/ .*iB/, "memory used of total");

// 3. The service: its component's image and state, the last operation's steps.
const svc = page.locator(`#services section[data-service='${service}']`);
assert.equal(await svc.count(), 1, "the service is listed");
assert.match(await svc.locator("h2").textContent(), new RegExp(`${service} on ${node}`));
assert.match(await svc.locator("table.components").textContent(), new RegExp(image.replace(/[.]/g, "\\.")));
assert.match(await svc.locator("td.state").first().textContent(), /running/);
assert.match(await svc.locator("p.last").textContent(), /succeeded/);
assert.match(await svc.locator("table.steps").textContent(), /app\/health/);

// 4. htmx refreshes the nodes table from its fragment route.
const refreshed = page.waitForResponse((r) => r.url().endsWith("/ui/mcp/nodes") && r.status() === 200, {
  timeout: 15000,
});
await refreshed;
await page.waitForSelector(`#nodes tr[data-node='${node}']`);

// 5. Sign out (MCIAS's page); a user without the admin role is refused.
await page.goto(`${base}/ui/`);
await page.click("header button[type=submit]");
await page.waitForURL(/\/ui\/login/);
await signIn(user, userPassword);
await page.waitForLoadState();
const refused = await page.goto(`${base}/ui/mcp/`);
assert.equal(refused.status(), 403, "the MCP page needs the admin role");

assert.deepEqual(cspViolations, [], "no CSP violations");
await context.close();
console.log(JSON.stringify({ ok: true, seconds: (Date.now() - started) / 1000 }));
