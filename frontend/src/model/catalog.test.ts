import { describe, expect, it } from "vitest";
import { CatalogError, parseCatalog, widgetDefaults } from "./catalog";
import catalogJson from "./fixtures/catalog.json";
import { createNode } from "./nodes";
import { Store } from "./store";
import { catalog } from "./test-support";

describe("parseCatalog", () => {
  it("reads the server's catalog, bare or wrapped in {nodes}", () => {
    expect(catalog.specs).toHaveLength(14);
    expect(parseCatalog({ nodes: catalogJson }).specs).toHaveLength(14);
    expect(catalog.input("latent.interpolate", "ratio")).toMatchObject({ type: "FLOAT", kind: "widget", accepts_list: true });
    expect(catalog.output("loaders.checkpoint", "vae")).toEqual({ name: "vae", type: "VAE" });
  });

  it("reports every problem at once, naming node and input", () => {
    const broken = [
      { ...catalogJson[0], id: "a", inputs: [{ name: "x", type: "TENSOR", kind: "socket", required: true }] },
      { ...catalogJson[0], id: "a", version: "1" },
      { ...catalogJson[0], id: "b", inputs: [{ name: "n", type: "INT", kind: "socket", required: true }] },
    ];
    try {
      parseCatalog(broken);
      throw new Error("expected a CatalogError");
    } catch (error) {
      expect(error).toBeInstanceOf(CatalogError);
      expect((error as CatalogError).problems).toEqual([
        'node "a" inputs[0] ("x").type: unknown type "TENSOR"; expected one of MODEL, CLIP, VAE, CONDITIONING, LATENT, IMAGE, MASK, SIGMAS, NOISE, SAMPLER, GUIDER, CONTROL_NET, CLIP_VISION, CLIP_VISION_OUTPUT, IPADAPTER, UPSCALE_MODEL, INT, FLOAT, STRING, BOOLEAN, ENUM',
        'node "a": "version" must be an integer, got "1"',
        'node "b" inputs[0] ("n"): kind "socket" does not fit type INT',
      ]);
    }
  });
});

describe("new nodes", () => {
  it("start with every widget default", () => {
    const spec = catalog.get("sampling.ksampler");
    if (spec === undefined) throw new Error("ksampler missing");
    expect(widgetDefaults(spec)).toEqual({
      seed: 0,
      steps: 20,
      cfg: 7,
      sampler: "euler",
      scheduler: "normal",
      denoise: 1,
    });
  });

  it("show the first choice of a dropdown without a default, and leave an empty one empty", () => {
    const store = new Store(catalog);
    expect(createNode(store, "loaders.checkpoint", [0, 0]).inputs).toEqual({ checkpoint: "tiny-sd15.safetensors" });
    expect(createNode(store, "image.load", [0, 0]).inputs).toEqual({});
  });

  it("get readable unique ids", () => {
    const store = new Store(catalog);
    const ids = [1, 2, 3].map(() => createNode(store, "sampling.ksampler", [0, 0]).id);
    expect(ids).toEqual(["ksampler", "ksampler_2", "ksampler_3"]);
    expect(() => createNode(store, "nope.nothing", [0, 0])).toThrow(
      'cannot create a node of type "nope.nothing": the node catalog has no such type',
    );
  });
});
