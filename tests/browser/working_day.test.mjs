// A working day in the editor, as a user: the first visit opens the txt2img example (laid
// out left to right, with the hint bar) and runs it; the plan marks what a change would
// re-run; right-click a node → Bypass and the next run skips it; Run to here executes only
// what the node needs; the canvas, link and group menus; in-app dialogs; queue on change
// re-runs after a widget edit. Job node states come from the server's job API.
// Run with: node --test tests/browser/working_day.test.mjs   (after `npm run build`)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await openEditor(browser.context, server.url, { firstVisit: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const workflow = () => hooks(page, () => window.__latentloom.workflow());
const status = (node) => hooks(page, (n) => window.__latentloom.runState(n)?.status, node);

/** The newest ended job's per-node states, from the server's job API. */
async function newestJob(after = 0) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { jobs } = await (await fetch(`${server.url}/api/jobs?status=succeeded&status=failed&limit=1`)).json();
    if (jobs.length > 0 && jobs[0].created_at > after) return jobs[0];
    if (Date.now() > deadline) throw new Error("no job ended within 60 s");
    await new Promise((done) => setTimeout(done, 100));
  }
}

const now = () => Date.now() / 1000;

async function rightClickNode(node) {
  const [x, y] = await hooks(page, (n) => window.__latentloom.nodeTitlePosition(n), node);
  await page.mouse.click(x, y, { button: "right" });
  await page.locator("[data-menu=node]").waitFor();
}

async function typeIntoWidget(node, name, value) {
  const at = await hooks(page, ([n, w]) => window.__latentloom.widgetPosition(n, w), [node, name]);
  await page.mouse.click(at[0], at[1]);
  await page.locator(".widget-editor input").waitFor();
  await page.keyboard.press("Control+A");
  await page.keyboard.type(String(value));
  await page.keyboard.press("Enter");
}

describe("a working day", () => {
  test("the first visit opens txt2img laid out left to right with the hint bar, and runs it", async () => {
    assert.equal(await hooks(page, () => window.__latentloom.tabName()), "txt2img");
    const doc = await workflow();
    assert.deepEqual(Object.keys(doc.nodes).sort(), ["checkpoint", "decode", "latent", "negative", "positive", "sampler", "save"]);
    const x = (id) => doc.nodes[id].ui.pos[0];
    assert.ok(x("checkpoint") < x("positive") && x("positive") < x("sampler") && x("sampler") < x("decode") && x("decode") < x("save"));
    const hint = page.locator("[data-hint=first-run]");
    assert.equal(await hint.isVisible(), true);
    assert.match(await hint.innerText(), /Add a node: double-click the canvas or press Tab/);
    await screenshot(page, "working-day-01-first-run");
    const queued = now();
    await page.click("[data-action=queue]");
    await page.waitForFunction(() => window.__latentloom.runState("save")?.status === "done", null, { timeout: 60_000 });
    const job = await newestJob(queued);
    assert.equal(job.status, "succeeded");
    assert.deepEqual(Object.values(job.nodes), Array(7).fill("finished"));
    assert.equal(await hint.isVisible(), false, "queueing dismisses the hint for good");
  });

  test("before queueing, an edit marks what will re-run and what comes from the cache", async () => {
    await typeIntoWidget("sampler", "seed", 43);
    await page.waitForFunction(() => window.__latentloom.runState("sampler")?.status === "will run", null, { timeout: 10_000 });
    assert.deepEqual(
      await Promise.all(["checkpoint", "positive", "negative", "latent", "sampler", "decode", "save"].map(status)),
      ["from cache", "from cache", "from cache", "from cache", "will run", "will run", "will run"],
    );
    await screenshot(page, "working-day-02-plan-marks");
  });

  test("right-click a node → Bypass: the next run skips it", async () => {
    await rightClickNode("sampler");
    await screenshot(page, "working-day-03-node-menu");
    const entries = await page.locator("[data-menu=node] > li[role=menuitem]").evaluateAll((items) => items.map((item) => item.dataset.entry));
    for (const entry of ["Run to here", "Title…", "Colour", "Bypass", "Mute", "Pin", "Collapse", "Clone", "Widget ↔ input", "Delete"]) assert.ok(entries.includes(entry), `the node menu has ${entry}`);
    await page.click('[data-menu=node] [data-entry="Bypass"]');
    assert.equal((await workflow()).nodes.sampler.mode, "bypass");
    const queued = now();
    await page.click("[data-action=queue]");
    const job = await newestJob(queued);
    assert.equal(job.status, "succeeded");
    assert.equal(job.nodes.sampler, undefined, "the bypassed sampler did not run");
    assert.ok(["finished", "cached"].includes(job.nodes.save));
    await rightClickNode("sampler");
    await page.click('[data-menu=node] [data-entry="Bypass"]');
    assert.equal((await workflow()).nodes.sampler.mode, undefined);
  });

  test("run to here executes only what the node needs", async () => {
    await typeIntoWidget("sampler", "seed", 44);
    await rightClickNode("sampler");
    const queued = now();
    await page.click('[data-menu=node] [data-entry="Run to here"]');
    const job = await newestJob(queued);
    assert.deepEqual(Object.keys(job.nodes).sort(), ["checkpoint", "latent", "negative", "positive", "sampler"]);
    assert.equal(job.nodes.sampler, "finished");
    await page.waitForFunction(() => window.__latentloom.runState("sampler")?.status === "done", null, { timeout: 10_000 });
    assert.equal(await status("save"), undefined, "Save Image was not part of the run");
  });

  test("canvas, link and group menus", async () => {
    const box = await page.locator(".layer-interactive").boundingBox();
    // Left of every node: the fitted view leaves a margin there (the minimap sits bottom right).
    await page.mouse.click(box.x + 12, box.y + box.height / 2, { button: "right" });
    await page.locator("[data-menu=canvas]").waitFor();
    await page.hover('[data-menu=canvas] [data-entry="Add node"]');
    await page.locator("[data-menu=canvas] .submenu").first().waitFor();
    await screenshot(page, "working-day-04-canvas-menu");
    await page.keyboard.press("Escape");
    assert.equal(await page.locator("[data-menu=canvas]").count(), 0);
    // The middle of a link's curve is the middle of its two sockets.
    const from = await hooks(page, () => window.__latentloom.socketPosition("sampler", "latent", "output"));
    const to = await hooks(page, () => window.__latentloom.socketPosition("decode", "latent", "input"));
    await page.mouse.click((from[0] + to[0]) / 2, (from[1] + to[1]) / 2, { button: "right" });
    await page.locator("[data-menu=link]").waitFor();
    await screenshot(page, "working-day-05-link-menu");
    await page.click('[data-menu=link] [data-entry="Add reroute"]');
    const rerouted = await workflow();
    assert.equal(rerouted.meta.reroutes.length, 1);
    assert.deepEqual(rerouted.nodes.decode.inputs.latent, { node: "sampler", output: "latent" }, "the link still runs sampler → decode");
    await page.keyboard.press("Control+Z");
    await hooks(page, () => window.__latentloom.app.select(["positive", "negative"]));
    await page.keyboard.press("Control+G");
    const [group] = (await workflow()).groups;
    const view = await hooks(page, () => window.__latentloom.view());
    // Near the title's left end: the group's frame reaches 30 px left of its nodes.
    const gx = box.x + view.offset[0] + (group.rect[0] + 12) * view.scale;
    const gy = box.y + view.offset[1] + (group.rect[1] + 8) * view.scale;
    await page.mouse.click(gx, gy, { button: "right" });
    await page.locator("[data-menu=group]").waitFor();
    await screenshot(page, "working-day-06-group-menu");
    await page.click('[data-menu=group] [data-entry="Select nodes"]');
    await page.keyboard.press("Control+Z");
  });

  test("in-app dialogs replace prompt(): rename a node with Enter, Escape cancels", async () => {
    await rightClickNode("positive");
    await page.click('[data-menu=node] [data-entry="Title…"]');
    const dialog = page.locator(".dialog[role=dialog]");
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains("dialog-input")), true, "focus starts in the field");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("Cat prompt");
    await screenshot(page, "working-day-07-dialog");
    await page.keyboard.press("Enter");
    assert.equal((await workflow()).nodes.positive.title, "Cat prompt");
    await rightClickNode("positive");
    await page.click('[data-menu=node] [data-entry="Title…"]');
    await dialog.waitFor();
    await page.keyboard.type("ignored");
    await page.keyboard.press("Escape");
    assert.equal(await dialog.count(), 0);
    assert.equal((await workflow()).nodes.positive.title, "Cat prompt");
  });

  test("queue on change re-runs after a widget edit", async () => {
    await page.click("[data-action=queue-on-change]");
    assert.equal(await page.getAttribute("[data-action=queue-on-change]", "aria-pressed"), "true");
    const edited = now();
    await typeIntoWidget("sampler", "steps", 3);
    const job = await newestJob(edited);
    assert.equal(job.status, "succeeded");
    assert.equal(job.nodes.sampler, "finished");
    assert.equal(job.nodes.checkpoint, "cached", "the cache serves what the edit did not touch");
    await page.click("[data-action=queue-on-change]");
    assert.deepEqual(page.errors, []);
  });
});
