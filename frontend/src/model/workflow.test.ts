import { describe, expect, it } from "vitest";
import { jsonEqual, type JsonObject } from "./json";
import { catalog, exampleWorkflows } from "./test-support";
import { fromWorkflow, toWorkflow } from "./workflow";
import { WorkflowFormatError } from "./workflow-document";

const brokenFixtures = import.meta.glob<string>(
  ["../../../tests/fixtures/broken/*.json", "!../../../tests/fixtures/broken/*.problems.json"],
  { query: "?raw", import: "default", eager: true },
);

function roundTrip(document: unknown): unknown {
  return JSON.parse(JSON.stringify(toWorkflow(fromWorkflow(document, catalog))));
}

function loadError(document: unknown): WorkflowFormatError {
  try {
    fromWorkflow(document, catalog);
  } catch (error) {
    if (error instanceof WorkflowFormatError) return error;
    throw error;
  }
  throw new Error("expected the document to be refused");
}

function txt2img(): JsonObject {
  const text = exampleWorkflows().get("txt2img.json");
  if (text === undefined) throw new Error("txt2img.json missing");
  return JSON.parse(text) as JsonObject;
}

describe("workflow round trip", () => {
  const files = [...exampleWorkflows()];

  it("finds the example workflows on disk", () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  it.each(files)("%s comes back exactly", (_name, text) => {
    const original: unknown = JSON.parse(text);
    const again = roundTrip(original);
    expect(again).toEqual(original);
    expect(jsonEqual(again, original)).toBe(true);
  });

  it("turns link inputs into link records and keeps literals on the node", () => {
    const store = fromWorkflow(txt2img(), catalog);
    expect(store.get("node", "sampler")?.inputs).toEqual({
      seed: 42,
      steps: 12,
      cfg: 7,
      sampler: "dpmpp_2m",
      scheduler: "karras",
      denoise: 1,
    });
    expect(store.get("link", "sampler:positive")?.from).toEqual({ node: "positive", output: "conditioning" });
    expect(store.get("node", "positive")?.title).toBe("Positive");
    const saved = (txt2img() as { nodes: Record<string, { ui: { pos: number[] } }> }).nodes["save"];
    expect(store.get("node", "save")?.pos).toEqual(saved?.ui.pos);
    expect(store.document.meta).toEqual({ title: "Text to image" });
  });

  it("preserves unknown node types, unknown inputs and unknown ui keys", () => {
    const document = txt2img();
    const nodes = document["nodes"] as JsonObject;
    const extended = {
      ...document,
      nodes: {
        ...nodes,
        upscaler: {
          type: "thirdparty.esrgan",
          inputs: { image: { node: "decode", output: "image" }, scale: 4, model: "4x.pth" },
          ui: { pos: [10, 20], size: [300, 120], collapsed: true, color: "#335", pinned: true },
        },
        save: {
          type: "image.save",
          inputs: { images: { node: "upscaler", output: "image" }, filename_prefix: "up", legacy_flag: true },
          ui: { pos: [640, 320] },
        },
      },
      groups: [{ id: "g1", title: "Sampling", rect: [0, 0, 600, 400], color: "#a1309b", font_size: 24 }],
    };
    const store = fromWorkflow(extended, catalog);
    expect(store.get("node", "upscaler")?.type).toBe("thirdparty.esrgan");
    expect(store.get("node", "upscaler")?.collapsed).toBe(true);
    expect(store.get("link", "upscaler:image")?.from.node).toBe("decode");
    expect(roundTrip(extended)).toEqual(extended);
  });

  it("keeps reroutes in meta and ui while the inline link names the real source", () => {
    const document = txt2img();
    const nodes = document["nodes"] as JsonObject;
    const decode = nodes["decode"] as JsonObject;
    const routed = {
      ...document,
      nodes: { ...nodes, decode: { ...decode, ui: { pos: [340, 320], reroutes: { latent: "r2" } } } },
      meta: {
        title: "Text to image",
        reroutes: [
          { id: "r1", pos: [200, 500], type: "LATENT", input: { node: "sampler", output: "latent" } },
          { id: "r2", pos: [260, 500], type: "LATENT", input: { node: "r1", output: "out" } },
        ],
      },
    };
    const store = fromWorkflow(routed, catalog);
    expect(store.get("link", "decode:latent")?.from).toEqual({ node: "r2", output: "out" });
    expect(store.get("link", "r2:in")?.from).toEqual({ node: "r1", output: "out" });
    expect(store.get("link", "r1:in")?.from).toEqual({ node: "sampler", output: "latent" });
    expect(store.document.meta).toEqual({ title: "Text to image" });
    expect(roundTrip(routed)).toEqual(routed);
  });

  it("refuses a reroute path that disagrees with the inline link", () => {
    const document = txt2img();
    const nodes = document["nodes"] as JsonObject;
    const decode = nodes["decode"] as JsonObject;
    const error = loadError({
      ...document,
      nodes: { ...nodes, decode: { ...decode, ui: { pos: [0, 0], reroutes: { latent: "r1" } } } },
      meta: { reroutes: [{ id: "r1", pos: [0, 0], input: { node: "latent", output: "latent" } }] },
    });
    expect(error.problems).toEqual([
      'nodes.decode.inputs.latent: links to {"node":"sampler","output":"latent"}, ' +
        'but its reroutes lead to {"node":"latent","output":"latent"}',
    ]);
  });

  it("drops a default collapsed=false and lays out nodes that have no position", () => {
    const document = {
      schema: "latentloom/workflow",
      version: 2,
      nodes: {
        a: { type: "latent.empty", inputs: {}, ui: { pos: [1, 2], collapsed: false } },
        b: { type: "latent.empty", inputs: {} },
      },
    };
    const saved = toWorkflow(fromWorkflow(document, catalog));
    expect(saved.nodes["a"]?.ui).toEqual({ pos: [1, 2] });
    expect(saved.nodes["b"]?.ui).toEqual({ pos: [340, 60] });
    expect(saved.groups).toEqual([]);
    expect(saved.meta).toEqual({});
  });

  it("keeps node modes, writing none for nodes that run", () => {
    const document = txt2img();
    const nodes = document["nodes"] as Record<string, JsonObject>;
    const moded = {
      ...document,
      nodes: { ...nodes, decode: { ...nodes["decode"], mode: "bypass" }, save: { ...nodes["save"], mode: "mute" } },
    };
    const store = fromWorkflow(moded, catalog);
    expect(store.get("node", "decode")?.mode).toBe("bypass");
    expect(store.get("node", "save")?.mode).toBe("mute");
    expect(store.get("node", "sampler")?.mode).toBeUndefined();
    const saved = roundTrip(moded) as { nodes: Record<string, JsonObject> };
    expect(saved).toEqual(moded);
    expect("mode" in (saved.nodes["sampler"] ?? {})).toBe(false);
    // "run" written out explicitly (the backend accepts it) reads as the default.
    const explicit = fromWorkflow({ ...document, nodes: { ...nodes, decode: { ...nodes["decode"], mode: "run" } } }, catalog);
    expect(explicit.get("node", "decode")?.mode).toBeUndefined();
  });

  it("migrates a version-1 document: every node runs", () => {
    const document: JsonObject = { ...txt2img(), version: 1 };
    const saved = toWorkflow(fromWorkflow(document, catalog));
    expect(saved.version).toBe(2);
    expect(Object.values(saved.nodes).every((node) => node.mode === undefined)).toBe(true);
    expect(Object.keys(saved.nodes)).toEqual(Object.keys(document["nodes"] as JsonObject));
  });

  const broken = Object.entries(brokenFixtures);

  it("opens every broken test fixture without losing its executable part", () => {
    expect(broken.length).toBeGreaterThanOrEqual(5);
    for (const [path, text] of broken) {
      const original = JSON.parse(text) as { nodes: Record<string, { ui?: unknown }> };
      const saved = roundTrip(original) as typeof original;
      const withoutUi = (nodes: typeof original.nodes) =>
        Object.fromEntries(Object.entries(nodes).map(([id, { ui: _ui, ...rest }]) => [id, rest]));
      expect(withoutUi(saved.nodes), path).toEqual(withoutUi(original.nodes));
    }
  });
});

describe("invalid workflow documents", () => {
  it("names the expected schema", () => {
    expect(loadError({ schema: "comfyui", version: 1, nodes: {} }).message).toBe(
      'not a Latentloom workflow: expected "schema": "latentloom/workflow", got "comfyui"',
    );
    expect(loadError([]).message).toBe("a workflow is a JSON object, got a list");
  });

  it("refuses versions it cannot read, saying why", () => {
    const base = { schema: "latentloom/workflow", nodes: {} };
    expect(loadError({ ...base, version: 4 }).message).toBe(
      "workflow version 4 was written by a newer Latentloom; this one reads versions up to 3",
    );
    expect(loadError({ ...base, version: 0 }).message).toBe("workflow version 0 is not supported (no migration)");
    expect(loadError({ ...base, version: "1" }).message).toBe('"version" must be an integer, got "1"');
  });

  it("reports every structural problem at once", () => {
    const error = loadError({
      schema: "latentloom/workflow",
      version: 2,
      nodes: {
        a: { type: "", inputs: { x: null } },
        b: { type: "latent.empty", inputs: { y: { node: "a" } }, colour: "red" },
      },
      extra: true,
    });
    expect(error.problems).toEqual([
      "extra: unknown key (a workflow has schema, version, nodes, subgraphs, groups, meta)",
      'nodes.a.type: expected a catalog id such as "sampling.ksampler", got ""',
      'nodes.a.inputs.x: expected a number, string, boolean, a list of those, or a link {"node": id, "output": name}; got null',
      "nodes.b.colour: unknown key (a node has type, inputs, mode, title, ui)",
      'nodes.b.inputs.y: expected a number, string, boolean, a list of those, or a link {"node": id, "output": name}; got {"node":"a"}',
    ]);
    expect(error.message.startsWith("invalid workflow document:\n  extra: unknown key")).toBe(true);
  });

  it("names the modes a node may have", () => {
    const error = loadError({
      schema: "latentloom/workflow",
      version: 2,
      nodes: { a: { type: "latent.empty", inputs: {}, mode: 4 } },
    });
    expect(error.problems).toEqual(["nodes.a.mode: expected one of run, mute, bypass, got 4"]);
  });

  it("checks editor state it interprets", () => {
    const error = loadError({
      schema: "latentloom/workflow",
      version: 2,
      nodes: { a: { type: "latent.empty", inputs: {}, ui: { pos: "top left" } } },
      groups: [{ id: "a", title: "clash", rect: [0, 0, 1, 1] }],
    });
    expect(error.problems).toEqual([
      'nodes.a.ui.pos: expected [x, y], got "top left"',
      'groups[0].id: "a" is also the id of a node or reroute',
    ]);
  });
});
