// Browser tests of what ComfyUI users bring, in the editor: a ComfyUI API-format JSON dropped
// on the canvas, a ComfyUI PNG opened with Open…, node modes (Ctrl+B, the node menu) and an
// unsupported class kept as a visible placeholder; then the ComfyUI export. Debian's
// Chromium (playwright-core) against a real `latentloom serve`, whose importer converts the
// files. The files are built here from ComfyUI's documented formats (REFERENCE.md): the PNG
// is a real 1×1 image with a tEXt "prompt" chunk, as ComfyUI's SaveImage writes it.
// Run with: node --test tests/browser/comfy.test.mjs   (after `npm run build`)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { deflateSync } from "node:zlib";
import { hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";

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

// txt2img as ComfyUI's "Save (API)" writes it, plus one custom-pack class we do not have.
const SHARPEN = "ImageSharpenPlus";
function apiPrompt({ withCustomNode }) {
  return {
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-sd15.safetensors" } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "a red fox in the snow", clip: ["4", 1] }, _meta: { title: "Positive" } },
    "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
    "5": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    "3": {
      class_type: "KSampler",
      inputs: {
        seed: 5, steps: 2, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1,
        model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0],
      },
    },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    ...(withCustomNode ? { "12": { class_type: SHARPEN, inputs: { image: ["8", 0], strength: 0.5 } } } : {}),
    "9": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: [withCustomNode ? "12" : "8", 0] } },
  };
}

// ---- a PNG with text chunks, byte by byte -------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

function pngWithText(texts) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(1, 0); // width
  header.writeUInt32BE(1, 4); // height
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const pixels = deflateSync(Buffer.from([0, 200, 60, 40])); // filter byte, one pixel
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header),
    chunk("IDAT", pixels),
    ...Object.entries(texts).map(([keyword, text]) => chunk("tEXt", Buffer.concat([Buffer.from(`${keyword}\0`, "latin1"), Buffer.from(text, "utf8")]))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ---- helpers --------------------------------------------------------------------------------

const workflow = () => hooks(page, () => window.__latentloom.workflow());
const nodeIds = () => hooks(page, () => window.__latentloom.nodeIds());
const rectOf = (node) => hooks(page, (n) => window.__latentloom.nodeRect(n), node);
const pixelAt = (point) => hooks(page, (p) => window.__latentloom.pixelAt(p), point);

async function waitForTab(name) {
  await page.waitForFunction((n) => window.__latentloom.tabName() === n, name, { timeout: 15_000 });
  await hooks(page, () => window.__latentloom.frames());
}

async function waitSaved() {
  await page.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: 5000 });
}

/** Drops a file on the canvas the way a desktop drag does: a real DataTransfer with a File. */
async function dropFile(name, bytes, mime) {
  const transfer = await page.evaluateHandle(
    ([fileName, data, type]) => {
      const dataTransfer = new DataTransfer();
      dataTransfer.items.add(new File([new Uint8Array(data)], fileName, { type }));
      return dataTransfer;
    },
    [name, [...bytes], mime],
  );
  await page.dispatchEvent(".canvas-host", "drop", { dataTransfer: transfer });
}

async function noticeText() {
  const notice = page.locator(".toast.notice").last();
  await notice.waitFor({ timeout: 10_000 });
  return notice.innerText();
}

/** A point in a node's body near its bottom edge, where nothing but the body colour is drawn. */
async function bodyPoint(node) {
  const [x, y, width, height] = await rectOf(node);
  return [Math.round(x + width / 2), Math.round(y + height - 4)];
}

const isPurple = ([r, g, b]) => r > g + 8 && b > g + 16;

async function dismissNotices() {
  for (const close of await page.locator(".notice-close").all()) await close.click();
}

describe("ComfyUI files in the editor", () => {
  test("a dropped ComfyUI API prompt opens as a graph, its custom node a visible placeholder", async () => {
    const bytes = Buffer.from(JSON.stringify(apiPrompt({ withCustomNode: true })));
    await dropFile("comfy api prompt.json", bytes, "application/json");
    await waitForTab("comfy api prompt");
    assert.deepEqual((await nodeIds()).sort(), ["12", "3", "4", "5", "6", "7", "8", "9"], "ComfyUI's node ids are kept");
    const text = await noticeText();
    assert.match(text, /Imported ComfyUI API prompt.*: 7 nodes mapped, 1 unsupported: ImageSharpenPlus/);

    const doc = await workflow();
    assert.equal(doc.nodes["3"].type, "sampling.ksampler");
    assert.equal(doc.nodes["12"].type, `comfy:${SHARPEN}`);
    assert.equal(doc.nodes["12"].ui.comfy.class_type, SHARPEN);
    assert.deepEqual(doc.nodes["12"].inputs.image, { node: "8", output: "image" }, "the link into the placeholder is kept");
    assert.deepEqual(doc.nodes["9"].inputs.images, { node: "12", output: "0" }, "the link out of it names ComfyUI's output index");

    // Visible: inside the canvas after the first fit, with both sockets its links end at.
    const canvas = await page.locator(".layer-interactive").boundingBox();
    const [x, y, width, height] = await rectOf("12");
    assert.ok(x >= canvas.x && y >= canvas.y && x + width <= canvas.x + canvas.width && y + height <= canvas.y + canvas.height, "the placeholder is on screen");
    assert.ok(await hooks(page, () => window.__latentloom.socketPosition("12", "image", "input")), "the placeholder has its input socket");
    assert.ok(await hooks(page, () => window.__latentloom.socketPosition("12", "0", "output")), "the placeholder has its output socket");
    await screenshot(page, "comfy-01-api-prompt-dropped");
    // Up close (full detail): the class name, ComfyUI's socket names, the kept value, the badge.
    const [px, py] = doc.nodes["12"].ui.pos;
    await hooks(page, (view) => window.__latentloom.setView(view), { scale: 1.2, offset: [500 - px * 1.2, 300 - py * 1.2] });
    await hooks(page, () => window.__latentloom.frames());
    await screenshot(page, "comfy-01b-placeholder-up-close");
    await page.click('[data-action="fit"]');

    // Validation names the class before any model work.
    await page.keyboard.press("Control+Enter");
    await page.waitForFunction(() => window.__latentloom.problems("12") !== undefined, null, { timeout: 30_000 });
    const problems = await hooks(page, () => window.__latentloom.problems("12"));
    assert.ok(problems.some((problem) => problem.code === "unsupported_class" && problem.message.includes(SHARPEN)), JSON.stringify(problems));
    await hooks(page, () => window.__latentloom.frames());
    await screenshot(page, "comfy-02-placeholder-refused");
    assert.deepEqual(page.errors, []);
  });

  test("a ComfyUI PNG opened with Open… shows its graph", async () => {
    await dismissNotices();
    const png = pngWithText({ prompt: JSON.stringify(apiPrompt({ withCustomNode: false })) });
    const chooser = page.waitForEvent("filechooser");
    await page.click('[data-action="open-file"]');
    await (await chooser).setFiles({ name: "ComfyUI_00001_.png", mimeType: "image/png", buffer: png });
    await waitForTab("ComfyUI_00001_");
    assert.equal((await nodeIds()).length, 7);
    assert.match(await noticeText(), /Imported ComfyUI API prompt.*: 7 nodes mapped$/m);
    const doc = await workflow();
    assert.deepEqual(doc.nodes["8"].inputs.latent, { node: "3", output: "latent" }, "ComfyUI's samples input is our latent");
    await screenshot(page, "comfy-03-png-opened");
  });

  test("a broken file is refused in-app, naming where, and opens no tab", async () => {
    const tabs = await page.locator(".tab").count();
    await dropFile("broken.json", Buffer.from('{"3": {"class_type": "KSampler", "inputs": {"model": ["4"'), "application/json");
    const toast = page.locator(".toast:not(.notice)", { hasText: "cannot open broken.json" });
    await toast.waitFor({ timeout: 10_000 });
    assert.match(await toast.innerText(), /cannot open broken\.json: .+/);
    assert.equal(await page.locator(".tab").count(), tabs, "nothing was half-opened");
    assert.equal(await hooks(page, () => window.__latentloom.tabName()), "ComfyUI_00001_");
  });

  test("Ctrl+B bypasses the selected node: drawn purple, saved as mode bypass, undone by Ctrl+Z", async () => {
    await dismissNotices();
    const point = await bodyPoint("8");
    const before = await pixelAt(point);
    assert.ok(!isPurple(before), `a running node is not purple: ${before}`);
    const title = await hooks(page, () => window.__latentloom.nodeTitlePosition("8"));
    await page.mouse.click(title[0], title[1]);
    await page.keyboard.press("Control+b");
    assert.equal((await workflow()).nodes["8"].mode, "bypass");
    await hooks(page, () => window.__latentloom.frames());
    const after = await pixelAt(point);
    assert.ok(isPurple(after), `a bypassed node is tinted purple: ${after}`);
    await screenshot(page, "comfy-04-bypassed");

    await waitSaved();
    const name = await hooks(page, () => window.__latentloom.tabName());
    const saved = await (await fetch(`${server.url}/api/workflows/${encodeURIComponent(name)}`)).json();
    assert.equal(saved.nodes["8"].mode, "bypass", "the saved document has the mode");
    assert.equal(saved.nodes["3"].mode, undefined, "nodes that run carry no mode");

    await page.keyboard.press("Control+z");
    assert.equal((await workflow()).nodes["8"].mode, undefined);
    await page.keyboard.press("Control+Shift+Z");
    assert.equal((await workflow()).nodes["8"].mode, "bypass");
  });

  test("the node menu mutes a node (drawn dimmed) in one undoable step", async () => {
    const point = await bodyPoint("5");
    const before = await pixelAt(point);
    const title = await hooks(page, () => window.__latentloom.nodeTitlePosition("5"));
    await page.mouse.click(title[0], title[1], { button: "right" });
    const menu = page.locator('.context-menu[data-menu="node"]');
    await menu.waitFor();
    assert.deepEqual(await menu.locator("li[data-entry]").evaluateAll((items) => items.map((item) => item.dataset.entry)), ["Make subgraph", "Run to here", "Title…", "Colour", "Bypass", "Mute", "Pin", "Collapse", "Clone", "Widget ↔ input", "Delete"]);
    await screenshot(page, "comfy-05-node-menu");
    await menu.locator('li[data-entry="Mute"]').click();
    assert.equal(await menu.count(), 0, "choosing closes the menu");
    assert.equal((await workflow()).nodes["5"].mode, "mute");
    await hooks(page, () => window.__latentloom.frames());
    const after = await pixelAt(point);
    const brightness = (pixel) => pixel[0] + pixel[1] + pixel[2];
    assert.ok(brightness(after) < brightness(before), `a muted node is dimmed: ${before} → ${after}`);
    await screenshot(page, "comfy-06-muted");
    await page.keyboard.press("Control+z");
    assert.equal((await workflow()).nodes["5"].mode, undefined);
    assert.deepEqual(page.errors, []);
  });

  test("Export → ComfyUI API format downloads ComfyUI's prompt", async () => {
    await dismissNotices();
    await page.click('[data-menu="export"]');
    const download = page.waitForEvent("download");
    await page.locator(".dropdown.open li", { hasText: "ComfyUI API format" }).click();
    const file = await download;
    const name = await hooks(page, () => window.__latentloom.tabName());
    assert.equal(file.suggestedFilename(), `${name}.json`);
    const prompt = JSON.parse(readFileSync(await file.path(), "utf8"));
    assert.equal(prompt["3"].class_type, "KSampler");
    assert.equal(prompt["4"].class_type, "CheckpointLoaderSimple");
    assert.deepEqual(prompt["3"].inputs.model, ["4", 0]);
    await noticeText();
    await screenshot(page, "comfy-07-exported");
    assert.deepEqual(page.errors, []);
  });
});
