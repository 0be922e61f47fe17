// Browser tests of subgraphs, results on nodes, the lightbox's compare slider and the
// library panels: Debian's Chromium (playwright-core) against a real `latentloom serve`
// with the tiny demo checkpoint. Tests run in order and share one server and one page.
// Run with: node --test tests/browser/library.test.mjs   (after `npm run build`)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, canvasOrigin, hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";

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
/** Node ids of what the canvas shows (an open subgraph's scratch tab included). */
const shownIds = () => hooks(page, () => [...window.__latentloom.app.tab.store.list("node")].map((node) => node.id));
const waitSaved = () => page.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: 5000 });

/** The txt2img graph the subgraph fixtures were made from, small enough to run in seconds. */
function smallTxt2img() {
  const document = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/subgraphs/txt2img.json"), "utf8"));
  document.nodes.latent.inputs.width = 64;
  document.nodes.latent.inputs.height = 64;
  document.nodes.sampler.inputs.steps = 2;
  return document;
}

/** Queues the open workflow; resolves with the save node's images once it is done. */
async function runAndWait() {
  await hooks(page, () => {
    const app = window.__latentloom.app;
    app.tab.run.nodes.clear();
    app.run("queue");
  });
  await page.waitForFunction(() => {
    const app = window.__latentloom.app;
    return ["done", "cached"].includes(app.tab?.run.nodes.get("save")?.status) && app.results.images(app.tab.run, "save").length > 0;
  }, null, { timeout: 120_000 });
  return hooks(page, () => {
    const app = window.__latentloom.app;
    return app.results.images(app.tab.run, "save").map((image) => ({ ...image }));
  });
}

/** The decoded pixels of an output image, as a string that compares exactly. */
function pixels(image) {
  return hooks(page, async (ref) => {
    const path = [ref.subfolder, ref.filename].filter((part) => part !== "").map(encodeURIComponent).join("/");
    const blob = await (await fetch(`/api/outputs/${path}`)).blob();
    const bitmap = await createImageBitmap(blob);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    let text = `${bitmap.width}x${bitmap.height}:`;
    for (let i = 0; i < data.length; i += 97) text += data[i].toString(16);
    return text;
  }, image);
}

let firstImage;
let firstPixels;

describe("subgraphs, results and the library", () => {
  test("a subgraph of three nodes survives a reload and gives the same image", async () => {
    await hooks(page, (document) => window.__latentloom.openDocument(document, "subgraph test"), smallTxt2img());
    await page.waitForFunction(() => window.__latentloom.nodeIds().includes("sampler"));
    [firstImage] = await runAndWait();
    firstPixels = await pixels(firstImage);
    // The strip on the Save Image node is the image: the node's preview holds it.
    await page.waitForFunction(() => window.__latentloom.hasPreview("save"), null, { timeout: 10_000 });
    await screenshot(page, "library-result-on-node");

    await hooks(page, () => window.__latentloom.app.select(["latent", "sampler", "decode"]));
    await page.locator(".layer-interactive").focus().catch(() => undefined);
    await page.keyboard.press("Control+Shift+E");
    const made = await workflow();
    assert.deepEqual(Object.keys(made.subgraphs ?? {}), ["subgraph"]);
    assert.equal(made.nodes.subgraph.type, "subgraph:subgraph");
    assert.deepEqual(Object.keys(made.subgraphs.subgraph.nodes), ["latent", "sampler", "decode"]);
    assert.deepEqual(made.nodes.save.inputs.images, { node: "subgraph", output: "image" });
    await waitSaved();

    await page.reload();
    await page.waitForFunction(() => window.__latentloom?.tabName() === "subgraph test" && window.__latentloom.connected(), null, { timeout: 15_000 });
    const reloaded = await workflow();
    assert.equal(reloaded.version, 3);
    assert.deepEqual(reloaded.subgraphs, made.subgraphs);
    // The Save Image strip comes back from the job history after the reload, before any run.
    await page.waitForFunction((name) => {
      const app = window.__latentloom.app;
      return app.results.images(app.tab.run, "save")[0]?.filename === name && window.__latentloom.hasPreview("save");
    }, firstImage.filename, { timeout: 10_000 });
    const [again] = await runAndWait();
    assert.equal(await pixels(again), firstPixels, "the subgraph gives the image its flat form gave");
    const log = await hooks(page, () => window.__latentloom.runLog());
    assert.ok(log.some((line) => line.includes("subgraph:sampler")), `the job ran the namespaced inner nodes: ${log.join(" | ")}`);
  });

  test("a subgraph opens with a breadcrumb and edits write back as its next revision", async () => {
    await hooks(page, () => {
      const app = window.__latentloom.app;
      app.openNodeMenu([300, 300], "subgraph");
    });
    await page.locator('.context-menu li[data-entry="Open subgraph"]').click();
    await page.locator(".subgraph-breadcrumb:not([hidden])").waitFor();
    assert.deepEqual(await shownIds(), ["latent", "sampler", "decode"]);
    await screenshot(page, "library-subgraph-breadcrumb");
    await hooks(page, () => {
      const tab = window.__latentloom.app.tab;
      tab.store.transact("steps", (tx) => tx.update("node", "sampler", (node) => ({ ...node, inputs: { ...node.inputs, steps: 3 } })));
    });
    await page.locator("[data-action=close-subgraph]").click();
    await page.locator(".subgraph-breadcrumb").waitFor({ state: "hidden" });
    const document = await workflow();
    assert.equal(document.subgraphs.subgraph.revision, 2);
    assert.equal(document.subgraphs.subgraph.nodes.sampler.inputs.steps, 3);
  });

  test("dragging a model from the library onto the canvas makes its loader with the file chosen", async () => {
    await page.locator("[data-library-tab=models]").click();
    const item = page.locator('[data-folder="checkpoints"][data-model="tiny-sd15.safetensors"]');
    await item.waitFor({ timeout: 30_000 });
    await screenshot(page, "library-models");
    const before = new Set(await hooks(page, () => window.__latentloom.nodeIds()));
    const [left, top] = await canvasOrigin(page);
    await item.dragTo(page.locator(".layer-interactive"), { targetPosition: { x: 200, y: 420 } });
    const added = (await hooks(page, () => window.__latentloom.nodeIds())).filter((id) => !before.has(id));
    assert.equal(added.length, 1, "one loader is added");
    const node = (await workflow()).nodes[added[0]];
    assert.equal(node.type, "loaders.checkpoint");
    assert.equal(node.inputs.checkpoint, "tiny-sd15.safetensors");
    const view = await hooks(page, () => window.__latentloom.view());
    const expected = [(200 - view.offset[0]) / view.scale, (420 - view.offset[1]) / view.scale];
    assert.ok(Math.abs(node.ui.pos[0] - expected[0]) < 2 && Math.abs(node.ui.pos[1] - expected[1]) < 2, `dropped at ${node.ui.pos}, expected ${expected}`);
    void left;
    void top;
    await hooks(page, (id) => window.__latentloom.app.tab.store.transact("remove", (tx) => tx.remove("node", id)), added[0]);
  });

  test("the compare slider shows two results", async () => {
    await hooks(page, () => {
      const tab = window.__latentloom.app.tab;
      tab.store.transact("seed", (tx) => tx.update("node", "subgraph", (node) => node));
      const definitions = tab.store.document.subgraphs;
      const sampler = definitions.subgraph.nodes.sampler;
      tab.store.transact("seed", (tx) =>
        tx.put("document", { ...tab.store.document, subgraphs: { ...definitions, subgraph: { ...definitions.subgraph, nodes: { ...definitions.subgraph.nodes, sampler: { ...sampler, inputs: { ...sampler.inputs, seed: 7 } } } } } }),
      );
    });
    const [second] = await runAndWait();
    assert.notEqual(second.filename, firstImage.filename);
    assert.notEqual(await pixels(second), firstPixels, "another seed, another image");
    // Click the result strip under Save Image: the lightbox opens on it.
    await page.waitForFunction((name) => {
      const app = window.__latentloom.app;
      return app.results.images(app.tab.run, "save")[0]?.filename === name && window.__latentloom.hasPreview("save");
    }, second.filename, { timeout: 10_000 });
    // Bring Save Image to the top left at 100 %, so its strip is on screen.
    const pos = (await workflow()).nodes.save.ui.pos;
    await hooks(page, (offset) => window.__latentloom.setView({ scale: 1, offset }), [120 - pos[0], 80 - pos[1]]);
    const rect = await hooks(page, () => window.__latentloom.nodeRect("save")); // client pixels
    await page.mouse.click(rect[0] + rect[2] / 2, rect[1] + rect[3] + 4 + rect[2] / 2);
    await page.locator(".lightbox:not([hidden])").waitFor();
    await screenshot(page, "library-lightbox");
    await page.locator(".lightbox [data-action=close]").click();
    // From the gallery: the newest result, compared with the one before it.
    await page.locator(".gallery-item").first().click();
    await page.locator(".lightbox:not([hidden])").waitFor();
    await page.locator(".lightbox [data-action=compare]").click();
    await page.waitForFunction(() => {
      const images = [...document.querySelectorAll(".compare img")];
      return images.length === 2 && images.every((image) => image.complete && image.naturalWidth > 0);
    });
    const sources = await page.locator(".compare img").evaluateAll((images) => images.map((image) => image.getAttribute("src")));
    assert.equal(new Set(sources).size, 2, `two different images: ${sources}`);
    await page.locator(".compare-slider").focus();
    await page.keyboard.press("Home");
    assert.equal(await page.locator(".compare-before").evaluate((image) => image.style.clipPath), "inset(0px 100% 0px 0px)");
    await page.locator(".compare-slider").fill("70");
    assert.equal(await page.locator(".compare-before").evaluate((image) => image.style.clipPath), "inset(0px 30% 0px 0px)");
    await screenshot(page, "library-compare");
    await page.keyboard.press("Escape");
    await page.locator(".lightbox").waitFor({ state: "hidden" });
  });

  test("the workflows and nodes panels list, search and show versions", async () => {
    await page.locator("[data-library-tab=workflows]").click();
    await page.locator('[data-workflow="subgraph test"]').waitFor({ timeout: 10_000 });
    await page.locator(".library-search").fill("subgraph");
    assert.deepEqual(await page.locator(".library-row").evaluateAll((rows) => rows.map((row) => row.dataset.workflow)), ["subgraph test"]);
    await page.locator('[data-workflow="subgraph test"] [data-action=versions]').click();
    await page.locator('[data-versions="subgraph test"] li').first().waitFor();
    await screenshot(page, "library-workflows");
    await page.locator("[data-library-tab=nodes]").click();
    const category = await hooks(page, () => window.__latentloom.app.catalog.get("sampling.ksampler").category);
    await page.locator(`[data-group="${category}"] summary`).click();
    await page.locator('[data-node="sampling.ksampler"]').first().waitFor();
    await screenshot(page, "library-nodes");
    // Keyboard: the tabs move with the arrow keys and show their focus.
    await page.locator("[data-library-tab=nodes]").focus();
    await page.keyboard.press("ArrowLeft");
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.libraryTab), "workflows");
    assert.deepEqual(page.errors, []);
  });

  test("two fingers pinch to zoom and pan the canvas", async () => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 5 });
    await hooks(page, () => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
    const [left, top] = await canvasOrigin(page);
    const touch = (type, points) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints: points.map(([x, y], id) => ({ x: left + x, y: top + y, id })) });
    await touch("touchStart", [[300, 300], [400, 300]]);
    for (let step = 1; step <= 5; step += 1) await touch("touchMove", [[300 - 10 * step, 300], [400 + 10 * step, 300]]);
    await touch("touchEnd", []);
    const view = await hooks(page, () => window.__latentloom.view());
    // Fingers 100 px apart went to 200 px about the midpoint (350, 300): twice the scale.
    assert.ok(Math.abs(view.scale - 2) < 1e-6, `scale ${view.scale}`);
    assert.ok(Math.abs(view.offset[0] + 350) < 1e-6 && Math.abs(view.offset[1] + 300) < 1e-6, `offset ${view.offset}`);
    await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: false });
    await cdp.detach();
  });

  test("settings persist on the server and the editor has a favicon", async () => {
    await page.locator("[data-action=settings]").click();
    await page.locator("dialog.settings-dialog[open]").waitFor();
    await page.locator("[data-setting=linkStyle]").selectOption("orthogonal");
    await page.locator("[data-setting=badges]").selectOption("id+pack");
    await page.locator("[data-setting=snapToGrid]").check();
    await page.waitForFunction(async () => {
      const stored = await (await fetch("/api/settings")).json();
      return stored.snapToGrid === true && stored.badges === "id+pack";
    });
    await screenshot(page, "library-settings");
    await page.locator("[data-action=close-settings]").click();
    const stored = await hooks(page, async () => (await fetch("/api/settings")).json());
    assert.deepEqual(stored, { linkStyle: "orthogonal", badges: "id+pack", snapToGrid: true });
    await page.reload();
    await page.waitForFunction(() => window.__latentloom?.connected(), null, { timeout: 15_000 });
    await page.locator("[data-action=settings]").click();
    assert.equal(await page.locator("[data-setting=linkStyle]").inputValue(), "orthogonal");
    await page.locator("[data-action=close-settings]").click();
    await screenshot(page, "library-orthogonal-links-and-badges");
    const icon = await hooks(page, async () => {
      const link = document.querySelector("link[rel=icon]");
      const response = await fetch(link.href);
      return { status: response.status, type: response.headers.get("content-type") };
    });
    assert.equal(icon.status, 200);
    assert.match(icon.type, /^image\/svg\+xml/);
  });
});
