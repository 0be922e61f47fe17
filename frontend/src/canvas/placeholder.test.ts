import { describe, expect, it } from "vitest";
import { canConnect, connect, fromWorkflow, toWorkflow, type NodeRecord } from "../model";
import { catalog } from "../model/test-support";
import { badgesOf } from "./draw-node";
import { DEFAULT_WIDTH, SOCKET_ROW, TITLE_HEIGHT, fallbackSlot, inputSlot, nodeLayout, outputSlot } from "./geometry";

/** What the importer keeps for an unsupported ComfyUI class (see model/placeholder.ts). */
const upscaler: NodeRecord = {
  id: "12",
  type: "comfy:ImageAddNoise",
  pos: [100, 40],
  collapsed: false,
  inputs: { strength: 0.5 },
  extraUi: {
    comfy: {
      class_type: "ImageAddNoise",
      inputs: [
        { name: "upscale_model", type: "UPSCALE_MODEL" },
        { name: "image", type: "IMAGE" },
      ],
      outputs: [{ name: "IMAGE", type: "IMAGE" }],
      widgets_values: [],
    },
  },
};

const document = {
  schema: "latentloom/workflow",
  version: 2,
  nodes: {
    decode: { type: "image.vae_decode", inputs: {}, ui: { pos: [0, 0] } },
    "12": {
      type: upscaler.type,
      inputs: { strength: 0.5, image: { node: "decode", output: "image" } },
      ui: { pos: [300, 0], comfy: upscaler.extraUi?.["comfy"] ?? null },
    },
    save: { type: "image.save", inputs: { images: { node: "12", output: "0" }, filename_prefix: "up" }, ui: { pos: [600, 0] } },
  },
};

describe("ComfyUI placeholder nodes", () => {
  it("take their sockets from ui.comfy: inputs by name, outputs by index with ComfyUI's labels", () => {
    const layout = nodeLayout(catalog, upscaler);
    expect(layout.placeholder?.classType).toBe("ImageAddNoise");
    expect(layout.inputs.map((slot) => [slot.name, slot.type])).toEqual([
      ["upscale_model", "UPSCALE_MODEL"],
      ["image", "IMAGE"],
      // A kept literal the file listed no input for still gets a row.
      ["strength", "FLOAT"],
    ]);
    expect(inputSlot(layout, "image")?.at).toEqual([100, 40 + TITLE_HEIGHT + SOCKET_ROW * 1.5]);
    const output = outputSlot(layout, "0");
    expect(output).toMatchObject({ name: "0", label: "IMAGE", type: "IMAGE" });
    expect(output?.at).toEqual([100 + DEFAULT_WIDTH, 40 + TITLE_HEIGHT + SOCKET_ROW / 2]);
    expect(layout.widgets).toEqual([]);
    expect([...(layout.valueRows ?? [])]).toEqual(["strength"]);
    expect(layout.rect[3]).toBe(TITLE_HEIGHT + 3 * SOCKET_ROW + 8);
  });

  it("collapse to the title bar like any node", () => {
    const layout = nodeLayout(catalog, { ...upscaler, collapsed: true });
    expect(layout.rect[3]).toBe(TITLE_HEIGHT);
    expect(new Set(layout.inputs.map((slot) => slot.at[1]))).toEqual(new Set([40 + TITLE_HEIGHT / 2]));
  });

  it("still show the class name when ui.comfy is missing or malformed", () => {
    const bare = nodeLayout(catalog, { ...upscaler, id: "x", extraUi: { comfy: { inputs: "oops" } } });
    expect(bare.placeholder?.classType).toBe("ImageAddNoise");
    expect(bare.inputs.map((slot) => slot.name)).toEqual(["strength"]);
    expect(bare.outputs).toEqual([]);
  });

  it("label outputs an API file named only by index with their type, as ComfyUI does", () => {
    const fromApi = { ...upscaler, id: "api", extraUi: { comfy: { class_type: "X", inputs: [], outputs: [{ name: "0", type: "IMAGE" }, { name: "1", type: "*" }] } } };
    expect(nodeLayout(catalog, fromApi).outputs.map((slot) => [slot.name, slot.label])).toEqual([
      ["0", "IMAGE"],
      ["1", "1"],
    ]);
  });

  it("wear an unsupported badge, plus one for their mode", () => {
    expect(badgesOf(upscaler, nodeLayout(catalog, upscaler)).map((badge) => badge.text)).toEqual(["unsupported"]);
    const bypassed = { ...upscaler, mode: "bypass" as const };
    expect(badgesOf(bypassed, nodeLayout(catalog, bypassed)).map((badge) => badge.text)).toEqual(["unsupported", "bypassed"]);
    const sampler: NodeRecord = { id: "s", type: "sampling.ksampler", pos: [0, 0], collapsed: false, inputs: {}, mode: "mute" };
    expect(badgesOf(sampler, nodeLayout(catalog, sampler)).map((badge) => badge.text)).toEqual(["muted"]);
  });

  it("keep their links through load and save, and type-check new ones", () => {
    const store = fromWorkflow(document, catalog);
    expect(store.get("link", "save:images")?.from).toEqual({ node: "12", output: "0" });
    expect(toWorkflow(store)).toEqual({ ...document, groups: [], meta: {} });
    expect(canConnect(store, { node: "decode", output: "image" }, { node: "12", input: "upscale_model" })).toEqual({
      ok: false,
      reason: 'type mismatch: output "image" of VAE Decode "decode" is IMAGE, but input "upscale_model" of ImageAddNoise "12" takes UPSCALE_MODEL',
    });
    expect(canConnect(store, { node: "12", output: "1" }, { node: "save", input: "images" })).toEqual({
      ok: false,
      reason: 'ImageAddNoise "12" has no output "1" (outputs: 0 (IMAGE))',
    });
    expect(connect(store, { node: "12", output: "0" }, { node: "save", input: "images" }).ok).toBe(true);
  });

  it("draw links to an unknown non-ComfyUI node at its edges, and never invent sockets on known nodes", () => {
    const unknown: NodeRecord = { id: "u", type: "thirdparty.esrgan", pos: [10, 20], collapsed: false, inputs: {} };
    const layout = nodeLayout(catalog, unknown);
    expect(layout.placeholder).toBeUndefined();
    expect(fallbackSlot(layout, "image", "input")?.at).toEqual([10, 20 + TITLE_HEIGHT / 2]);
    expect(fallbackSlot(layout, "image", "output")?.at).toEqual([10 + DEFAULT_WIDTH, 20 + TITLE_HEIGHT / 2]);
    const known = nodeLayout(catalog, { ...unknown, type: "image.vae_decode" });
    expect(fallbackSlot(known, "nonsense", "input")).toBeUndefined();
  });
});
