// Browser tests of the mask painter, the new socket types and sigma plots: Debian's Chromium
// (playwright-core) against a real `latentloom serve` with the tiny demo checkpoint. The tests
// share one server and browser and run in order (the inpaint test leaves the masked upload).
// Run with: node --test tests/browser/masks.test.mjs   (after `npm run build`)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, canvasOrigin, drag, hooks, launchBrowser, openEditor, screenshot, startServer } from "./support.mjs";

let server;
let browser;
let page;
let catalog;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await openEditor(browser.context, server.url);
  catalog = new Map((await (await fetch(`${server.url}/api/nodes`)).json()).nodes.map((spec) => [spec.id, spec]));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const workflow = () => hooks(page, () => window.__latentloom.workflow());
const link = (node, output) => ({ node, output });

/** A document node: every widget at its catalog default, then `inputs` on top. */
function node(type, pos, inputs = {}) {
  const spec = catalog.get(type);
  assert.ok(spec, `the catalog has ${type}`);
  const values = {};
  for (const input of spec.inputs) {
    if (input.kind !== "widget") continue;
    if (input.default !== undefined) values[input.name] = input.default;
    else if (input.choices?.length > 0) values[input.name] = input.choices[0];
  }
  return { type, inputs: { ...values, ...inputs }, ui: { pos } };
}

/** Load Checkpoint, two prompts, a VAE Decode and a Save Image around `middle` nodes. */
function document(middle, sampled) {
  return {
    schema: "latentloom/workflow",
    version: 2,
    nodes: {
      checkpoint: node("loaders.checkpoint", [20, 20]),
      positive: node("conditioning.encode_prompt", [300, 20], { clip: link("checkpoint", "clip"), text: "a lake" }),
      negative: node("conditioning.encode_prompt", [300, 200], { clip: link("checkpoint", "clip"), text: "" }),
      ...middle,
      decode: node("image.vae_decode", [1160, 20], { vae: link("checkpoint", "vae"), latent: sampled }),
      save: node("image.save", [1160, 160], { images: link("decode", "image"), filename_prefix: "masks" }),
    },
  };
}

const inpaint = () => document(
  {
    image: node("image.load", [20, 380]),
    encode: node("latent.vae_encode_for_inpaint", [580, 380], { vae: link("checkpoint", "vae"), image: link("image", "image"), mask: link("image", "mask") }),
    sampler: node("sampling.ksampler", [860, 20], {
      model: link("checkpoint", "model"),
      positive: link("positive", "conditioning"),
      negative: link("negative", "conditioning"),
      latent: link("encode", "latent"),
      steps: 2,
    }),
  },
  link("sampler", "latent"),
);

async function waitSaved() {
  await page.waitForFunction(() => window.__latentloom.pendingWrites() === 0, null, { timeout: 5000 });
}

async function openTab(doc, name) {
  await hooks(page, ([d, n]) => window.__latentloom.openDocument(d, n), [doc, name]);
  await hooks(page, () => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
  await hooks(page, () => window.__latentloom.frames());
}

async function clickAction(nodeId, action) {
  const [x, y] = await hooks(page, ([n, a]) => window.__latentloom.actionPosition(n, a), [nodeId, action]);
  await page.mouse.click(x, y);
}

/** [r, g, b, a] of `name` in the input folder at image pixel (x, y), decoded by the page's canvas. */
function inputPixels(name, points) {
  return hooks(page, async ([file, at]) => {
    const response = await fetch(`/api/view?type=input&filename=${encodeURIComponent(file)}`);
    const bitmap = await createImageBitmap(await response.blob(), { premultiplyAlpha: "none" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    return { size: [bitmap.width, bitmap.height], pixels: at.map(([x, y]) => [...context.getImageData(x, y, 1, 1).data]) };
  }, [name, points]);
}

describe("masks in the editor", () => {
  test("uploads an image, paints a mask, saves it as a new upload and inpaints with it", async () => {
    await openTab(inpaint(), "Inpaint");
    assert.equal((await workflow()).nodes.image.inputs.image, undefined, "a fresh server has no input images to default to");

    // Upload through the node's own button: the browser's file chooser, a real multipart POST.
    const chooser = page.waitForEvent("filechooser");
    await clickAction("image", "upload");
    await (await chooser).setFiles(join(ROOT, "workflows/inputs/landscape.png"));
    await page.waitForFunction(() => window.__latentloom.workflow().nodes.image.inputs.image === "landscape.png");

    // The painter opens over the editor with the image at its own resolution.
    await clickAction("image", "edit-mask");
    await page.locator(".mask-painter").waitFor();
    assert.deepEqual(await hooks(page, () => window.__latentloom.maskPainter()), { width: 256, height: 256, painted: 0 });
    await page.locator('.mask-painter [data-control="hardness"]').fill("1");
    await page.locator('.mask-painter [data-control="size"]').fill("40");
    // A stroke across the middle, left to right: image x 64..192 at y 128.
    const box = await page.locator(".mask-painter-mask").boundingBox();
    const at = (x, y) => [box.x + (x * box.width) / 256, box.y + (y * box.height) / 256];
    await drag(page, at(64, 128), at(192, 128));
    const painted = (await hooks(page, () => window.__latentloom.maskPainter())).painted;
    // A 40 px hard brush swept 128 px: about 128·40 + π·20² ≈ 6,377 pixels.
    assert.ok(painted > 5500 && painted < 7200, `the stroke painted ${painted} pixels`);
    await screenshot(page, "masks-01-painted");
    await page.locator('.mask-painter [data-action="save"]').click();
    await page.locator(".mask-painter").waitFor({ state: "detached" });
    await page.waitForFunction(() => window.__latentloom.workflow().nodes.image.inputs.image === "landscape-mask.png");

    // One undo step returns to the unmasked file; redo comes back.
    await page.keyboard.press("Control+z");
    assert.equal((await workflow()).nodes.image.inputs.image, "landscape.png");
    await page.keyboard.press("Control+y");
    assert.equal((await workflow()).nodes.image.inputs.image, "landscape-mask.png");

    // The file: alpha 0 under the stroke, 255 away from it, decoded by the browser.
    const { size, pixels } = await inputPixels("landscape-mask.png", [[128, 128], [70, 128], [128, 60], [5, 5]]);
    assert.deepEqual(size, [256, 256]);
    assert.deepEqual(pixels.map((pixel) => pixel[3]), [0, 0, 255, 255]);
    // RGB under the mask is the original's (a canvas cannot show it: check with Pillow).
    const check = [
      "from PIL import Image",
      "import sys",
      "a = Image.open(sys.argv[1]).convert('RGBA'); b = Image.open(sys.argv[2]).convert('RGBA')",
      "print(a.getpixel((128, 128)), b.getpixel((128, 128))[:3], a.getpixel((5, 5))[:3] == b.getpixel((5, 5))[:3])",
    ].join("\n");
    const out = execFileSync(join(ROOT, ".venv/bin/python"), ["-c", check, join(server.data, "input/landscape-mask.png"), join(ROOT, "workflows/inputs/landscape.png")]).toString().trim();
    const [, masked, original] = out.match(/^\((\d+, \d+, \d+), 0\) \((\d+, \d+, \d+)\) True$/) ?? [];
    assert.ok(masked !== undefined && masked === original, `RGB under the painted pixel is the original's: ${out}`);

    // The image dropdown lists both uploads (the catalog was loaded before them), newest first.
    const widget = await hooks(page, () => window.__latentloom.widgetPosition("image", "image"));
    await page.mouse.click(widget[0], widget[1]);
    await page.locator(".widget-editor .combo-list").waitFor();
    assert.deepEqual(await page.locator(".widget-editor .combo-list li").allTextContents(), ["landscape-mask.png", "landscape.png"]);
    await page.keyboard.press("Escape");

    // Reopened, the painter shows the mask the file carries.
    await clickAction("image", "edit-mask");
    await page.locator(".mask-painter").waitFor();
    assert.deepEqual(await hooks(page, () => window.__latentloom.maskPainter()), { width: 256, height: 256, painted });
    await page.locator('.mask-painter [data-action="invert"]').click();
    assert.equal((await hooks(page, () => window.__latentloom.maskPainter())).painted, 256 * 256 - painted);
    await page.keyboard.press("Escape");
    await page.locator(".mask-painter").waitFor({ state: "detached" });
    assert.equal((await workflow()).nodes.image.inputs.image, "landscape-mask.png", "cancel leaves the node as it was");

    // Image + mask → VAE Encode (for Inpaint) → KSampler → VAE Decode → Save Image.
    await waitSaved();
    const galleryBefore = await page.locator(".gallery-item").count();
    await page.keyboard.press("Control+Enter");
    await page.waitForFunction((n) => window.__latentloom.runState(n)?.status === "done", "save", { timeout: 120_000 });
    await page.waitForFunction((count) => document.querySelectorAll(".gallery-item").length > count, galleryBefore, { timeout: 10_000 });
    const result = page.locator(".gallery-item").last();
    await result.evaluate((image) => image.decode());
    assert.ok(await result.evaluate((image) => image.naturalWidth > 0), "the result image loads");
    assert.equal(await hooks(page, () => window.__latentloom.runState("encode")?.status), "done");
    await screenshot(page, "masks-02-inpainted");
    assert.deepEqual(page.errors, []);
  });

  test("MASK sockets draw in their colour and take only MASK links", async () => {
    const doc = {
      schema: "latentloom/workflow",
      version: 2,
      nodes: { image: node("image.load", [40, 40], { image: "landscape.png" }), noise: node("latent.set_noise_mask", [400, 40]) },
    };
    await openTab(doc, "Mask sockets");
    const mask = await hooks(page, () => window.__latentloom.socketPosition("image", "mask", "output"));
    assert.deepEqual((await hooks(page, (p) => window.__latentloom.pixelAt(p), mask)).slice(0, 3), [0x81, 0xc7, 0x84], "MASK is green");
    // A MASK dropped on a LATENT input is refused; on the MASK input it links.
    await drag(page, mask, await hooks(page, () => window.__latentloom.socketPosition("noise", "latent", "input")));
    assert.equal((await workflow()).nodes.noise.inputs.latent, undefined);
    await drag(page, mask, await hooks(page, () => window.__latentloom.socketPosition("noise", "mask", "input")));
    assert.deepEqual((await workflow()).nodes.noise.inputs.mask, { node: "image", output: "mask" });
  });

  test("new nodes are found by display name and by ComfyUI class name", async () => {
    const cases = [
      ["SetLatentNoiseMask", "latent.set_noise_mask"],
      ["VAEEncodeForInpaint", "latent.vae_encode_for_inpaint"],
      ["BasicScheduler", "sampling.basic_scheduler"],
      ["Set Latent Noise Mask", "latent.set_noise_mask"],
    ];
    const [left, top] = await canvasOrigin(page);
    for (const [query, type] of cases) {
      const before = new Set(await hooks(page, () => window.__latentloom.nodeIds()));
      await hooks(page, () => window.__latentloom.app.closeOverlays());
      await page.mouse.dblclick(left + 700, top + 400);
      await page.locator(".search-box input").waitFor();
      await page.keyboard.type(query);
      await page.keyboard.press("Enter");
      const added = (await hooks(page, () => window.__latentloom.nodeIds())).filter((id) => !before.has(id));
      assert.equal(added.length, 1, `searching "${query}" adds one node`);
      assert.equal((await workflow()).nodes[added[0]].type, type, `searching "${query}" finds ${type}`);
      await page.keyboard.press("Delete");
    }
  });

  test("a scheduler's sigmas are plotted under its output after a run", async () => {
    const doc = document(
      {
        latent: node("latent.empty", [300, 380], { width: 64, height: 64 }),
        select: node("sampling.sampler_select", [580, 380]),
        schedule: node("sampling.basic_scheduler", [580, 20], { model: link("checkpoint", "model"), steps: 4 }),
        sampler: node("sampling.sampler_custom", [860, 20], {
          model: link("checkpoint", "model"),
          positive: link("positive", "conditioning"),
          negative: link("negative", "conditioning"),
          sampler: link("select", "sampler"),
          sigmas: link("schedule", "sigmas"),
          latent: link("latent", "latent"),
        }),
      },
      link("sampler", "output"),
    );
    await openTab(doc, "Sigmas");
    const [x, y, width, height] = await hooks(page, () => window.__latentloom.plotRect("schedule", "sigmas"));
    assert.ok(width > 200 && height > 40, "the plot's room is there before any run");
    await waitSaved();
    await page.keyboard.press("Control+Enter");
    await page.waitForFunction(() => window.__latentloom.sigmas("schedule") !== undefined, null, { timeout: 120_000 });
    const values = (await hooks(page, () => window.__latentloom.sigmas("schedule"))).sigmas;
    assert.equal(values.length, 5, "4 steps: 5 sigmas");
    assert.equal(values[4], 0);
    assert.ok(values[0] > values[1] && values[1] > values[2], "falling");
    await hooks(page, () => window.__latentloom.frames());
    // The first point (largest sigma) sits at the plot's top-left corner inside its padding.
    const pixel = await hooks(page, (p) => window.__latentloom.pixelAt(p), [x + 4, y + 4]);
    assert.deepEqual(pixel.slice(0, 3), [0xcd, 0xdc, 0x39], "the curve is drawn in the SIGMAS colour");
    await screenshot(page, "masks-03-sigmas");
    assert.deepEqual(page.errors, []);
  });
});
