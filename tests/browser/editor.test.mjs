// Browser tests of the editor: Debian's Chromium (playwright-core) against a real
// `latentloom serve` with the tiny demo checkpoint. The tests run in order and share one
// server and one browser: later tests use the graph the first one builds.
// Run with: node --test tests/browser/   (after `npm run build`)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, canvasOrigin, drag, hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";
import { generateWorkflow } from "./generate.mjs";

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await openEditor(browser.context, server.url);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const workflow = () => hooks(page, () => window.__latentloom.workflow());
const position = (node, name, side) => hooks(page, ([n, s, d]) => window.__latentloom.socketPosition(n, s, d), [node, name, side]);

async function addBySearch(at, query, type) {
  const [left, top] = await canvasOrigin(page);
  const before = new Set(await hooks(page, () => window.__latentloom.nodeIds()));
  await page.mouse.dblclick(left + at[0], top + at[1]);
  await page.locator(".search-box input").waitFor();
  await page.keyboard.type(query);
  await page.keyboard.press("Enter");
  const ids = await hooks(page, () => window.__latentloom.nodeIds());
  const added = ids.filter((id) => !before.has(id));
  assert.equal(added.length, 1, `searching "${query}" should add one node`);
  const doc = await workflow();
  assert.equal(doc.nodes[added[0]].type, type, `searching "${query}" should add a ${type}`);
  return added[0];
}

async function wire(from, output, to, input) {
  await drag(page, await position(from, output, "output"), await position(to, input, "input"));
  const doc = await workflow();
  assert.deepEqual(doc.nodes[to].inputs[input], { node: from, output }, `dragging ${from}.${output} to ${to}.${input} should link them`);
}

async function waitSaved(target = page) {
  await target.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: 5000 });
}

const ids = {};

/** Closes any open widget editor or search box, so keys go to the canvas again. */
async function settle(target = page) {
  await target.bringToFront();
  await hooks(target, () => window.__latentloom.app.closeOverlays());
}

describe("the editor", () => {
  test("builds txt2img from an empty canvas by search and drag, then runs it", async () => {
    assert.deepEqual(await hooks(page, () => window.__latentloom.nodeIds()), [], "a first visit starts with an empty canvas");
    await screenshot(page, "01-empty");
    ids.checkpoint = await addBySearch([20, 40], "Load Checkpoint", "loaders.checkpoint");
    ids.positive = await addBySearch([290, 20], "Encode Prompt", "conditioning.encode_prompt");
    ids.negative = await addBySearch([290, 170], "Encode Prompt", "conditioning.encode_prompt");
    ids.latent = await addBySearch([290, 320], "Empty Latent", "latent.empty");
    ids.sampler = await addBySearch([560, 20], "KSampler", "sampling.ksampler");
    ids.decode = await addBySearch([820, 20], "VAE Decode", "image.vae_decode");
    ids.save = await addBySearch([820, 320], "Save Image", "image.save");
    await wire(ids.checkpoint, "model", ids.sampler, "model");
    await wire(ids.checkpoint, "clip", ids.positive, "clip");
    await wire(ids.checkpoint, "clip", ids.negative, "clip");
    await wire(ids.positive, "conditioning", ids.sampler, "positive");
    await wire(ids.negative, "conditioning", ids.sampler, "negative");
    await wire(ids.latent, "latent", ids.sampler, "latent");
    await wire(ids.sampler, "latent", ids.decode, "latent");
    await wire(ids.checkpoint, "vae", ids.decode, "vae");
    await wire(ids.decode, "image", ids.save, "images");

    // The prompt: a textarea over the widget, typed into like any text field.
    const prompt = await hooks(page, ([n]) => window.__latentloom.widgetPosition(n, "text"), [ids.positive]);
    await page.mouse.click(prompt[0], prompt[1]);
    await page.locator(".widget-editor textarea").waitFor();
    await page.keyboard.type("a red fox in the snow");
    await page.keyboard.press("Escape");
    // Steps: click the number to type it.
    const steps = await hooks(page, ([n]) => window.__latentloom.widgetPosition(n, "steps"), [ids.sampler]);
    await page.mouse.click(steps[0], steps[1]);
    await page.locator(".widget-editor input").waitFor();
    await page.keyboard.press("Control+A");
    await page.keyboard.type("24");
    await page.keyboard.press("Enter");
    let doc = await workflow();
    assert.equal(doc.nodes[ids.positive].inputs.text, "a red fox in the snow");
    assert.equal(doc.nodes[ids.sampler].inputs.steps, 24);
    await screenshot(page, "02-built");

    await page.keyboard.press("Control+Enter");
    await page.waitForFunction((n) => window.__latentloom.runLog().some((line) => line.startsWith(`node.progress ${n}`)), ids.sampler, { timeout: 60_000 });
    await page.waitForFunction((n) => window.__latentloom.hasPreview(n), ids.sampler, { timeout: 60_000 });
    await screenshot(page, "03-running");
    await page.locator(".gallery-item").first().waitFor({ timeout: 120_000 });
    const log = await hooks(page, () => window.__latentloom.runLog());
    assert.ok(log.includes(`node.progress ${ids.sampler} 24/24`), `the sampler reports every step:\n${log.join("\n")}`);
    await page.waitForFunction((n) => window.__latentloom.runState(n)?.status === "done", ids.save);
    assert.ok(await hooks(page, () => window.__latentloom.previewsReceived()) >= 1);
    await screenshot(page, "04-finished");
    assert.deepEqual(page.errors, []);
  });

  test("a reload finds the graph as it was", async () => {
    await waitSaved();
    const before = await workflow();
    await page.reload();
    await page.waitForFunction(() => window.__latentloom?.nodeIds().length > 0, null, { timeout: 15_000 });
    assert.deepEqual(await workflow(), before);
  });

  test("a second page on the same workflow sees an edit made in the first within a second", async () => {
    const second = await openEditor(browser.context, server.url);
    // The second page's watch travels on its own socket; give the server a moment to file it.
    await second.waitForTimeout(200);
    try {
      assert.equal(await hooks(second, () => window.__latentloom.tabName()), await hooks(page, () => window.__latentloom.tabName()));
      await page.bringToFront();
      const steps = await hooks(page, ([n]) => window.__latentloom.widgetPosition(n, "steps"), [ids.sampler]);
      const box = await page.locator(".layer-interactive").boundingBox();
      void box;
      // The ▶ arrow at the right end of the steps row adds one step.
      const row = await hooks(page, ([n]) => {
        const hooksApi = window.__latentloom;
        const node = hooksApi.app.workspace.active.store.get("node", n);
        const widget = hooksApi.app.renderer.layoutOf(node).widgets.find((w) => w.input.name === "steps");
        return widget.rect;
      }, [ids.sampler]);
      const scale = (await hooks(page, () => window.__latentloom.view())).scale;
      await page.mouse.click(steps[0] + (row[2] / 2 - 6) * scale, steps[1]);
      assert.equal((await workflow()).nodes[ids.sampler].inputs.steps, 25);
      const started = Date.now();
      await second.waitForFunction((n) => window.__latentloom.workflow().nodes[n]?.inputs.steps === 25, ids.sampler, { timeout: 1000 });
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1000, `the edit arrived after ${elapsed} ms`);
      await screenshot(second, "05-second-page");
    } finally {
      await second.close();
    }
  });

  test("undo and redo a wiring change", async () => {
    await settle();
    const origin = await canvasOrigin(page);
    // Dragging a linked input away unplugs it.
    await drag(page, await position(ids.sampler, "latent", "input"), [origin[0] + 500, origin[1] + 600]);
    assert.equal((await workflow()).nodes[ids.sampler].inputs.latent, undefined);
    await page.keyboard.press("Control+Z");
    assert.deepEqual((await workflow()).nodes[ids.sampler].inputs.latent, { node: ids.latent, output: "latent" });
    await page.keyboard.press("Control+Shift+Z");
    assert.equal((await workflow()).nodes[ids.sampler].inputs.latent, undefined);
    await page.keyboard.press("Control+Z");
    assert.deepEqual((await workflow()).nodes[ids.sampler].inputs.latent, { node: ids.latent, output: "latent" });
  });

  test("a validation error shows on the offending node and input", async () => {
    await settle();
    const origin = await canvasOrigin(page);
    await drag(page, await position(ids.sampler, "model", "input"), [origin[0] + 500, origin[1] + 600]);
    await page.keyboard.press("Control+Enter");
    await page.waitForFunction((n) => (window.__latentloom.problems(n) ?? []).length > 0, ids.sampler, { timeout: 10_000 });
    const problems = await hooks(page, (n) => window.__latentloom.problems(n), ids.sampler);
    assert.ok(problems.some((problem) => problem.input === "model"), JSON.stringify(problems));
    await screenshot(page, "06-validation-error");
    await page.keyboard.press("Control+Z");
  });

  test("dropping a saved PNG opens its graph", async () => {
    const src = await page.locator(".gallery-item").first().getAttribute("src");
    const url = new URL(src.split("?")[0], server.url).href;
    const bytes = Buffer.from(await (await fetch(url)).arrayBuffer());
    const original = await workflow();
    const tabBefore = await hooks(page, () => window.__latentloom.tabName());
    const transfer = await page.evaluateHandle((data) => {
      const transfer = new DataTransfer();
      const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "dropped.png", { type: "image/png" });
      transfer.items.add(file);
      return transfer;
    }, bytes.toString("base64"));
    await page.dispatchEvent(".canvas-host", "drop", { dataTransfer: transfer });
    await page.waitForFunction((name) => window.__latentloom.tabName() !== name, tabBefore, { timeout: 10_000 });
    assert.equal(await hooks(page, () => window.__latentloom.tabName()), "dropped");
    const reopened = await workflow();
    const types = (doc) => Object.fromEntries(Object.entries(doc.nodes).map(([id, node]) => [id, node.type]));
    assert.deepEqual(types(reopened), types(original));
    // The image was made with 24 steps; the graph it carries says so.
    assert.equal(reopened.nodes[ids.sampler].inputs.steps, 24);
    await screenshot(page, "07-dropped-png");
  });

  test("copy, paste with and without links, duplicate, delete, box-select, group, reroute, dropdown, resize", async () => {
    await settle();
    const nodeCount = async () => Object.keys((await workflow()).nodes).length;
    const start = await nodeCount();
    const [left, top] = await canvasOrigin(page);
    const title = await hooks(page, (n) => window.__latentloom.nodeTitlePosition(n), ids.sampler);
    await page.mouse.click(title[0], title[1]);
    await page.keyboard.press("Control+C");
    await page.mouse.move(left + 700, top + 500);
    await page.keyboard.press("Control+V");
    let doc = await workflow();
    const added = Object.keys(doc.nodes).filter((id) => id.startsWith(`${ids.sampler}_`));
    assert.equal(added.length, 1, "paste adds one sampler");
    assert.equal(doc.nodes[added[0]].inputs.model, undefined, "a plain paste drops links from outside the copy");
    assert.equal(doc.nodes[added[0]].inputs.steps, doc.nodes[ids.sampler].inputs.steps);
    await page.keyboard.press("Control+Shift+V");
    doc = await workflow();
    const linked = Object.keys(doc.nodes).filter((id) => id.startsWith(`${ids.sampler}_`) && !added.includes(id));
    assert.equal(linked.length, 1);
    assert.deepEqual(doc.nodes[linked[0]].inputs.model, { node: ids.checkpoint, output: "model" }, "paste with links keeps them");
    await page.keyboard.press("Control+D");
    assert.equal(await nodeCount(), start + 3, "duplicate adds a copy of the selection");
    await page.keyboard.press("Delete");
    assert.equal(await nodeCount(), start + 2);

    // Shift-drag a box around the two pasted samplers, delete them, undo.
    const a = await hooks(page, (n) => window.__latentloom.nodeTitlePosition(n), added[0]);
    const b = await hooks(page, (n) => window.__latentloom.nodeTitlePosition(n), linked[0]);
    await page.keyboard.down("Shift");
    await drag(page, [Math.min(a[0], b[0]) - 80, Math.min(a[1], b[1]) - 30], [Math.max(a[0], b[0]) + 40, Math.max(a[1], b[1]) + 10]);
    await page.keyboard.up("Shift");
    const selected = await hooks(page, () => [...window.__latentloom.app.tab.selection]);
    assert.deepEqual(selected.sort(), [...added, ...linked].sort());
    await page.keyboard.press("Delete");
    assert.equal(await nodeCount(), start);
    await page.keyboard.press("Control+Z");
    assert.equal(await nodeCount(), start + 2);
    await page.keyboard.press("Delete");

    // Group the checkpoint.
    const checkpoint = await hooks(page, (n) => window.__latentloom.nodeTitlePosition(n), ids.checkpoint);
    await page.mouse.click(checkpoint[0], checkpoint[1]);
    await page.keyboard.press("Control+G");
    doc = await workflow();
    assert.equal(doc.groups.length, 1);

    // Alt-click the middle of the decode -> save link to route it through a reroute.
    const from = await position(ids.decode, "image", "output");
    const to = await position(ids.save, "images", "input");
    await page.keyboard.down("Alt");
    await page.mouse.click((from[0] + to[0]) / 2, (from[1] + to[1]) / 2);
    await page.keyboard.up("Alt");
    doc = await workflow();
    assert.equal(doc.meta.reroutes?.length, 1, JSON.stringify(doc.meta));
    assert.deepEqual(doc.nodes[ids.save].inputs.images, { node: ids.decode, output: "image" }, "the saved link still names the real source");

    // The sampler dropdown: filter, Enter picks.
    const sampler = await hooks(page, ([n]) => window.__latentloom.widgetPosition(n, "sampler"), [ids.sampler]);
    await page.mouse.click(sampler[0], sampler[1]);
    await page.locator(".widget-editor input").waitFor();
    await page.keyboard.type("dpmpp_2m");
    await page.keyboard.press("Enter");
    assert.equal((await workflow()).nodes[ids.sampler].inputs.sampler, "dpmpp_2m");
    // Drag a node's bottom-right corner to widen it.
    const corner = await hooks(page, (n) => {
      const api = window.__latentloom;
      const [x, y, w, h] = api.app.renderer.layoutOf(api.app.tab.store.get("node", n)).rect;
      const view = api.view();
      const box = document.querySelector(".layer-interactive").getBoundingClientRect();
      return [box.left + (x + w - 3) * view.scale + view.offset[0], box.top + (y + h - 3) * view.scale + view.offset[1], w];
    }, ids.decode);
    await drag(page, [corner[0], corner[1]], [corner[0] + 60, corner[1] + 5]);
    const size = (await workflow()).nodes[ids.decode].ui.size;
    assert.ok(size !== undefined && Math.abs(size[0] - (corner[2] + 60 / (await hooks(page, () => window.__latentloom.view())).scale)) < 3, JSON.stringify(size));
    await screenshot(page, "08-edited");
    assert.deepEqual(page.errors, []);
  });

  test("counts: visible nodes only, zero draws while idle, one redraw per preview", async () => {
    await hooks(page, (doc) => window.__latentloom.openDocument(doc, "thousand"), generateWorkflow(1000));
    await hooks(page, () => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
    await hooks(page, () => window.__latentloom.frames(3));
    const stats = await hooks(page, () => ({ ...window.__latentloom.stats }));
    assert.equal(stats.totalNodes, 1000);
    assert.ok(stats.nodesDrawnLastFrame > 0 && stats.nodesDrawnLastFrame <= 40, `drew ${stats.nodesDrawnLastFrame} of 1000 nodes`);
    await screenshot(page, "09-thousand-nodes");

    const idleBefore = await hooks(page, () => window.__latentloom.stats.drawCount);
    await page.waitForTimeout(500);
    const idleAfter = await hooks(page, () => window.__latentloom.stats.drawCount);
    assert.equal(idleAfter - idleBefore, 0, "an idle editor draws nothing");

    const previewBefore = await hooks(page, () => window.__latentloom.stats.drawCount);
    await hooks(page, () => window.__latentloom.injectPreview("s0"));
    await hooks(page, () => window.__latentloom.frames(4));
    const previewAfter = await hooks(page, () => window.__latentloom.stats.drawCount);
    assert.equal(previewAfter - previewBefore, 1, "one preview, one redraw");

    // Zoomed out, simplified drawing; panning draws once per frame at most.
    await hooks(page, () => window.__latentloom.setView({ scale: 0.3, offset: [0, 0] }));
    await hooks(page, () => window.__latentloom.frames(2));
    const zoomedOut = await hooks(page, () => window.__latentloom.stats.nodesDrawnLastFrame);
    assert.ok(zoomedOut > stats.nodesDrawnLastFrame && zoomedOut < 1000, `drew ${zoomedOut} nodes at 30%`);
    assert.deepEqual(page.errors, []);
  });

  test("wheel zoom, fit to view with simplified drawing, minimap click", async () => {
    await settle();
    await hooks(page, () => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
    const [left, top] = await canvasOrigin(page);
    await page.mouse.move(left + 400, top + 300);
    await page.mouse.wheel(0, -240);
    await hooks(page, () => window.__latentloom.frames(2));
    const zoomed = await hooks(page, () => window.__latentloom.view());
    assert.ok(zoomed.scale > 1, `a wheel turn up zooms in (scale ${zoomed.scale})`);
    assert.equal(await page.locator(".zoom-readout").textContent(), `${Math.round(zoomed.scale * 100)}%`);
    await page.keyboard.press(".");
    await hooks(page, () => window.__latentloom.frames(2));
    const fitted = await hooks(page, () => ({ view: window.__latentloom.view(), drawn: window.__latentloom.stats.nodesDrawnLastFrame }));
    assert.ok(fitted.view.scale < 0.6, "the whole 1,000-node graph fits only when zoomed out");
    assert.equal(fitted.drawn, 1000, "fitted, every node is visible and drawn (simplified)");
    await screenshot(page, "10-fitted");
    await hooks(page, () => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
    const minimap = await page.locator(".minimap").boundingBox();
    await page.mouse.click(minimap.x + minimap.width / 2, minimap.y + minimap.height / 2);
    const centred = await hooks(page, () => window.__latentloom.view());
    assert.ok(centred.offset[0] < -1000, `clicking the minimap's middle centres the view there (offset ${centred.offset})`);
  });

  test("queue panel: queue N, reorder, clear, interrupt", async () => {
    await settle();
    const example = JSON.parse(readFileSync(join(ROOT, "workflows/txt2img.json"), "utf8"));
    example.nodes.sampler.inputs.steps = 400; // long enough to act on the queue while it runs
    await hooks(page, (doc) => window.__latentloom.openDocument(doc, "queue test"), example);
    await page.fill(".runs", "3");
    await page.click('[data-action="queue"]');
    await page.locator(".queue-item.running").waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll(".queue-item.queued").length === 2);
    const queued = () => page.$$eval(".queue-item.queued", (rows) => rows.map((row) => row.dataset.job));
    const [second, third] = await queued();
    await page.locator(`.queue-item[data-job="${third}"] button[title="Run earlier"]`).click();
    await page.waitForFunction(([a, b]) => [...document.querySelectorAll(".queue-item.queued")].map((row) => row.dataset.job).join() === [a, b].join(), [third, second]);
    await screenshot(page, "11-queue");
    await page.click('button:has-text("Clear")');
    await page.waitForFunction(() => document.querySelectorAll(".queue-item.queued").length === 0);
    const running = await page.locator(".queue-item.running").getAttribute("data-job");
    await page.click('button:has-text("Interrupt")');
    await page.locator(".queue-list .empty").waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => window.__latentloom.runLog().length > 0);
    // The interrupted job and the cleared ones ended cancelled: none ran to the end or failed.
    const statusOf = (id) => page.evaluate(async (job) => (await (await fetch(`/api/jobs/${job}`)).json()).status, id);
    for (const job of [running, second, third]) assert.equal(await statusOf(job), "cancelled", `job ${job}`);
    await page.fill(".runs", "1");
    assert.deepEqual(page.errors, []);
  });
  test("a 64-bit seed typed into a widget reaches the saved workflow and the job exactly", async () => {
    await settle();
    const example = JSON.parse(readFileSync(join(ROOT, "workflows/txt2img.json"), "utf8"));
    example.nodes.sampler.inputs.steps = 1;
    await hooks(page, (doc) => window.__latentloom.openDocument(doc, "big seed"), example);
    const seed = "18446744073709551615"; // 2^64 - 1: a JS number would make it ...552000
    const at = await hooks(page, () => window.__latentloom.widgetPosition("sampler", "seed"));
    await page.mouse.click(at[0], at[1]);
    await page.locator(".widget-editor input").waitFor();
    await page.keyboard.press("Control+A");
    await page.keyboard.type(seed);
    await page.keyboard.press("Enter");
    assert.equal(await hooks(page, () => String(window.__latentloom.workflow().nodes.sampler.inputs.seed)), seed);
    await waitSaved();
    const saved = await (await fetch(`${server.url}/api/workflows/big%20seed`)).text();
    assert.match(saved, new RegExp(`"seed":\\s*${seed}[,}\\s]`), "the saved document keeps every digit");
    const jobIds = async () => (await (await fetch(`${server.url}/api/jobs?limit=500`)).json()).jobs.map((job) => job.id);
    const before = new Set(await jobIds());
    await page.click('[data-action="queue"]');
    let job;
    for (const deadline = Date.now() + 60_000; job === undefined && Date.now() < deadline; ) {
      job = (await jobIds()).find((id) => !before.has(id));
      if (job === undefined) await new Promise((done) => setTimeout(done, 100));
    }
    assert.ok(job !== undefined, "queueing made a job");
    let text = "";
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      text = await (await fetch(`${server.url}/api/jobs/${job}`)).text();
      if (/"status":\s*"(succeeded|failed|cancelled)"/.test(text)) break;
      await new Promise((done) => setTimeout(done, 200));
    }
    assert.match(text, /"status":\s*"succeeded"/, text.slice(0, 400));
    assert.match(text, new RegExp(`"seed":\\s*${seed}[,}\\s]`), "the job ran with every digit of the seed");
    assert.deepEqual(page.errors, []);
  });

  test("renaming a tab onto another saved workflow is refused in-app and changes nothing", async () => {
    await settle();
    const taken = { schema: "latentloom/workflow", version: 2, nodes: {}, meta: { title: "keep me" } };
    const put = await fetch(`${server.url}/api/workflows/taken`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(taken) });
    assert.equal(put.status, 200, await put.text());
    const before = await (await fetch(`${server.url}/api/workflows/taken`)).text();
    const name = await hooks(page, () => window.__latentloom.tabName());
    // The name is asked in the in-app dialog (ui/dialog.ts), not the browser's prompt().
    await page.click('[data-action="rename"]');
    await page.locator(".dialog .dialog-input").fill("taken");
    await page.keyboard.press("Enter");
    const notice = page.locator('[data-notice="warning"]', { hasText: "was not renamed" });
    await notice.waitFor({ timeout: 10_000 });
    assert.equal(
      await notice.locator("span").textContent(),
      `"${name}" was not renamed: a saved workflow named 'taken' already exists; choose another name, or open it and delete it first`,
    );
    assert.equal(await hooks(page, () => window.__latentloom.tabName()), name);
    assert.equal(await (await fetch(`${server.url}/api/workflows/taken`)).text(), before, "the other workflow is untouched");
    await notice.locator(".notice-close").click();
    // A free name renames the saved workflow itself: the old name is gone, the other kept.
    await page.click('[data-action="rename"]');
    await page.locator(".dialog .dialog-input").fill(`${name} renamed`);
    await page.keyboard.press("Enter");
    await page.waitForFunction((next) => window.__latentloom.tabName() === next, `${name} renamed`, { timeout: 10_000 });
    const names = (await (await fetch(`${server.url}/api/workflows`)).json()).workflows.map((info) => info.name);
    assert.ok(names.includes(`${name} renamed`) && names.includes("taken") && !names.includes(name), names.join(", "));
    assert.deepEqual(page.errors, []);
  });
});
