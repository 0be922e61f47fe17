// Two tabs on one saved workflow resync after a dropped connection (issue 9, "Sync and
// resume"). Page A and page B live in separate browser contexts (separate storage, separate
// network emulation) against a real `latentloom serve`. B goes offline: its context is put
// offline and its websocket is closed, so every reconnect attempt fails until it is back;
// the editor's own backoff and `workflow.watch` with its last revision do the rest.
// (Chromium's offline emulation fails new connections but leaves an open websocket up, so
// the test hook `dropConnection` closes the live one.) While B
// is away A edits the prompt and B edits the seed; once B is back online both pages and the
// saved document must hold both edits. Every wait polls with a deadline, never a fixed sleep.
// Run with: npm run build && node --test tests/browser/resync.test.mjs
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";

const NAME = "resync";
const PROMPT = "a lighthouse in a storm, edited by page A";
const SEED = 987654321;
// Generous: two cores shared by a whole team, and B's reconnect backoff grows to 5 s.
const DEADLINE_MS = 20_000;

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const document = JSON.parse(readFileSync(join(ROOT, "workflows", "txt2img.json"), "utf8"));
  const response = await fetch(`${server.url}/api/workflows/${NAME}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(document),
  });
  assert.ok(response.ok, `saving the starting workflow failed: ${response.status} ${await response.text()}`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openWorkflow(context) {
  const page = await openEditor(context, server.url);
  await hooks(page, (name) => window.__latentloom.app.workspace.openSaved(name).then(() => undefined), NAME);
  await page.waitForFunction((name) => window.__latentloom.tabName() === name, NAME, { timeout: DEADLINE_MS });
  return page;
}

const inputsOf = (page) => hooks(page, () => {
  const nodes = window.__latentloom.workflow().nodes;
  return { text: nodes.positive.inputs.text, seed: nodes.sampler.inputs.seed };
});

/** Types into a widget through the editor's own widget editor, as a user would. */
async function editWidget(page, node, name, field, value) {
  await page.bringToFront();
  await hooks(page, () => window.__latentloom.app.closeOverlays());
  const at = await hooks(page, ([n, w]) => window.__latentloom.widgetPosition(n, w), [node, name]);
  assert.ok(at !== undefined, `no ${name} widget on node ${node}`);
  await page.mouse.click(at[0], at[1]);
  await page.locator(`.widget-editor ${field}`).waitFor({ timeout: DEADLINE_MS });
  await page.keyboard.press("Control+A");
  await page.keyboard.type(String(value));
  await page.keyboard.press(field === "textarea" ? "Escape" : "Enter");
}

async function savedInputs() {
  const response = await fetch(`${server.url}/api/workflows/${NAME}`);
  assert.ok(response.ok, `GET /api/workflows/${NAME} answered ${response.status}`);
  const nodes = (await response.json()).nodes;
  return { text: nodes.positive.inputs.text, seed: nodes.sampler.inputs.seed };
}

async function poll(what, probe, deadline = DEADLINE_MS) {
  const end = Date.now() + deadline;
  let last;
  for (;;) {
    last = await probe();
    if (last.text === PROMPT && last.seed === SEED) return last;
    if (Date.now() > end) assert.fail(`${what} lacks an edit after ${deadline} ms: ${JSON.stringify(last)}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

test("a tab that lost its connection rebases its offline edit onto the other tab's and both converge", async () => {
  const contextB = await browser.browser.newContext({ viewport: { width: 1400, height: 900 } });
  try {
    const pageA = await openWorkflow(browser.context);
    const pageB = await openWorkflow(contextB);
    const start = await inputsOf(pageA);
    assert.deepEqual(await inputsOf(pageB), start);
    assert.notEqual(start.text, PROMPT);
    assert.notEqual(start.seed, SEED);

    // B drops off the network: offline emulation makes every reconnect fail (it leaves an
    // open websocket alone), and the editor's live socket is closed under it.
    await contextB.setOffline(true);
    await hooks(pageB, () => window.__latentloom.dropConnection());
    await pageB.waitForFunction(() => !window.__latentloom.connected(), null, { timeout: DEADLINE_MS });

    // A edits the prompt and the server saves it.
    await editWidget(pageA, "positive", "text", "textarea", PROMPT);
    assert.equal((await inputsOf(pageA)).text, PROMPT);
    await pageA.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: DEADLINE_MS });
    assert.equal((await savedInputs()).text, PROMPT);

    // B, still offline, edits the seed; it has not seen A's prompt.
    await editWidget(pageB, "sampler", "seed", "input", SEED);
    assert.deepEqual(await inputsOf(pageB), { text: start.text, seed: SEED });
    // Offline, B's edit stays unsaved: no whole-document PUT may replace what A saved, even
    // when the network returns before the socket has reconnected (which happens next).
    await pageB.waitForFunction(() => window.__latentloom.pendingWrites() > 0, null, { timeout: DEADLINE_MS });
    assert.equal(await hooks(pageB, () => window.__latentloom.connected()), false, "B must still be offline while it edits");
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past the 2 s fallback timer
    assert.equal((await savedInputs()).text, PROMPT, "B's stale copy never replaced A's prompt");
    await screenshot(pageB, "resync-1-offline");

    // B comes back: the editor reconnects by itself, rebases and re-sends its seed.
    await contextB.setOffline(false);
    await pageB.waitForFunction(() => window.__latentloom.connected(), null, { timeout: DEADLINE_MS });
    await poll("page B", () => inputsOf(pageB));
    await poll("page A (B's edit must reach it)", () => inputsOf(pageA));
    await poll(`the saved document (GET /api/workflows/${NAME})`, savedInputs);
    for (const page of [pageA, pageB]) await page.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: DEADLINE_MS });
    // Settled: nothing later undoes either edit, and the two pages show the same graph.
    assert.deepEqual(await savedInputs(), { text: PROMPT, seed: SEED });
    assert.deepEqual(await hooks(pageA, () => window.__latentloom.workflow()), await hooks(pageB, () => window.__latentloom.workflow()));
    await screenshot(pageA, "resync-2-page-a");
    await screenshot(pageB, "resync-3-page-b");
    assert.deepEqual(pageA.errors, []);
    assert.deepEqual(pageB.errors, []);
  } finally {
    await contextB.close();
  }
});
