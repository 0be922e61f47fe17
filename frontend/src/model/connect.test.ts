import { describe, expect, it } from "vitest";
import { canConnect, connect, disconnect } from "./connect";
import { createNode, removeItems } from "./nodes";
import { addReroute } from "./reroutes";
import { catalogWithNumbers, loadExample } from "./test-support";
import { toWorkflow } from "./workflow";

describe("canConnect", () => {
  it("accepts matching types", () => {
    const store = loadExample("txt2img.json");
    expect(canConnect(store, { node: "latent", output: "latent" }, { node: "decode", input: "latent" })).toEqual({
      ok: true,
      type: "LATENT",
    });
  });

  it("refuses mismatched types, naming both ends", () => {
    const store = loadExample("txt2img.json");
    expect(canConnect(store, { node: "sampler", output: "latent" }, { node: "decode", input: "vae" })).toEqual({
      ok: false,
      reason: 'type mismatch: output "latent" of KSampler "sampler" is LATENT, but input "vae" of VAE Decode "decode" takes VAE',
    });
  });

  it("refuses unknown nodes, outputs and inputs with the valid names", () => {
    const store = loadExample("txt2img.json");
    const reason = (from: { node: string; output: string }, to: { node: string; input: string }) => {
      const result = canConnect(store, from, to);
      return result.ok ? "ok" : result.reason;
    };
    expect(reason({ node: "ghost", output: "x" }, { node: "decode", input: "vae" })).toBe(
      'there is no node or reroute "ghost"',
    );
    expect(reason({ node: "checkpoint", output: "unet" }, { node: "sampler", input: "model" })).toBe(
      'Load Checkpoint "checkpoint" has no output "unet" (outputs: model, clip, vae)',
    );
    expect(reason({ node: "checkpoint", output: "clip" }, { node: "positive", input: "tokens" })).toBe(
      'Positive "positive" has no input "tokens" (inputs: clip, text)',
    );
  });

  it("lets a widget input take a link of its widget type, and only that", () => {
    const store = loadExample("txt2img.json", catalogWithNumbers);
    createNode(store, "test.numbers", [0, 0], { id: "numbers" });
    expect(canConnect(store, { node: "numbers", output: "int" }, { node: "sampler", input: "seed" }).ok).toBe(true);
    expect(canConnect(store, { node: "numbers", output: "float" }, { node: "sampler", input: "cfg" }).ok).toBe(true);
    expect(canConnect(store, { node: "numbers", output: "float" }, { node: "sampler", input: "seed" })).toEqual({
      ok: false,
      reason: 'type mismatch: output "float" of Numbers "numbers" is FLOAT, but input "seed" of KSampler "sampler" takes INT',
    });
  });

  it("refuses a link that would close a cycle, naming the nodes on it", () => {
    const store = loadExample("img2img.json");
    // decode's image feeding the encoder that feeds the sampler that feeds decode.
    const result = canConnect(store, { node: "decode", output: "image" }, { node: "encode", input: "image" });
    expect(result).toEqual({
      ok: false,
      reason: 'would create a cycle: VAE Decode "decode" → VAE Encode "encode" → KSampler "sampler" → VAE Decode "decode"',
    });
    createNode(store, "latent.upscale", [0, 0], { id: "upscale" });
    expect(canConnect(store, { node: "upscale", output: "latent" }, { node: "upscale", input: "latent" })).toEqual({
      ok: false,
      reason: 'would create a cycle: Latent Upscale "upscale" → Latent Upscale "upscale"',
    });
  });

  it("refuses to check nodes of types the catalog does not know", () => {
    const store = loadExample("txt2img.json");
    store.transact("Add", (tx) => tx.put("node", { id: "x", type: "thirdparty.thing", pos: [0, 0], collapsed: false, inputs: {} }));
    const result = canConnect(store, { node: "x", output: "image" }, { node: "save", input: "images" });
    expect(result).toEqual({
      ok: false,
      reason: 'node "x" has type "thirdparty.thing", which the node catalog does not know',
    });
  });
});

describe("connect", () => {
  it("replaces the link an input already has", () => {
    const store = loadExample("txt2img.json");
    const result = connect(store, { node: "negative", output: "conditioning" }, { node: "sampler", input: "positive" });
    expect(result.ok).toBe(true);
    const into = [...store.list("link")].filter((link) => link.to.node === "sampler" && link.to.input === "positive");
    expect(into.map((link) => link.from.node)).toEqual(["negative"]);
  });

  it("changes nothing when refused", () => {
    const store = loadExample("txt2img.json");
    const version = store.version;
    const result = connect(store, { node: "sampler", output: "latent" }, { node: "decode", input: "vae" });
    expect(result.ok).toBe(false);
    expect(store.version).toBe(version);
    expect(store.get("link", "decode:vae")?.from.node).toBe("checkpoint");
  });

  it("writes a linked widget as a link and restores the typed value once unlinked", () => {
    const store = loadExample("txt2img.json", catalogWithNumbers);
    createNode(store, "test.numbers", [0, 0], { id: "numbers" });
    connect(store, { node: "numbers", output: "int" }, { node: "sampler", input: "seed" });
    expect(toWorkflow(store).nodes["sampler"]?.inputs["seed"]).toEqual({ node: "numbers", output: "int" });
    disconnect(store, { node: "sampler", input: "seed" });
    expect(toWorkflow(store).nodes["sampler"]?.inputs["seed"]).toBe(42);
  });

  it("types a reroute by what is plugged into it and frees it when unplugged", () => {
    const store = loadExample("txt2img.json");
    addReroute(store, [100, 100], "r1");
    addReroute(store, [200, 100], "r2");
    expect(connect(store, { node: "r1", output: "out" }, { node: "r2", input: "in" }).ok).toBe(true);
    expect(store.get("reroute", "r1")?.type).toBeUndefined();
    expect(connect(store, { node: "sampler", output: "latent" }, { node: "r1", input: "in" }).ok).toBe(true);
    expect(store.get("reroute", "r2")?.type).toBe("LATENT");
    expect(canConnect(store, { node: "r2", output: "out" }, { node: "decode", input: "vae" })).toEqual({
      ok: false,
      reason: 'type mismatch: reroute "r2" is LATENT, but input "vae" of VAE Decode "decode" takes VAE',
    });
    expect(connect(store, { node: "r2", output: "out" }, { node: "decode", input: "latent" }).ok).toBe(true);
    const saved = toWorkflow(store).nodes["decode"];
    expect(saved?.inputs["latent"]).toEqual({ node: "sampler", output: "latent" });
    expect(saved?.ui?.["reroutes"]).toEqual({ latent: "r2" });
    // A cycle through reroutes is still a cycle.
    expect(canConnect(store, { node: "decode", output: "image" }, { node: "r1", input: "in" }).ok).toBe(false);
    removeItems(store, ["sampler"]);
    disconnect(store, { node: "decode", input: "latent" });
    expect(store.get("reroute", "r1")?.type).toBeUndefined();
    expect(store.get("reroute", "r2")?.type).toBeUndefined();
  });
});
