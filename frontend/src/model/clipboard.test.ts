import { describe, expect, it } from "vitest";
import { copySelection, paste } from "./clipboard";
import { removeItems } from "./nodes";
import { loadExample } from "./test-support";
import { UndoManager } from "./undo";

const SELECTION = ["positive", "negative", "sampler"];

function linksInto(store: ReturnType<typeof loadExample>, node: string): Record<string, string> {
  return Object.fromEntries(
    [...store.list("link")]
      .filter((link) => link.to.node === node)
      .map((link) => [link.to.input, `${link.from.node}.${link.from.output}`]),
  );
}

describe("copy and paste", () => {
  it("pastes copies with new ids at an offset, keeping links among them only", () => {
    const store = loadExample("txt2img.json");
    const [x, y] = store.get("node", "sampler")?.pos ?? [0, 0];
    // Through text, as the system clipboard carries it.
    const clipboard: unknown = JSON.parse(JSON.stringify(copySelection(store, SELECTION)));
    const result = paste(store, clipboard, { offset: [20, 30], withLinks: false });
    expect([...result.ids]).toEqual([
      ["positive", "positive_2"],
      ["negative", "negative_2"],
      ["sampler", "sampler_2"],
    ]);
    expect(store.get("node", "sampler_2")?.pos).toEqual([x + 20, y + 30]);
    expect(store.get("node", "positive_2")?.title).toBe("Positive");
    expect(store.get("node", "sampler_2")?.inputs["seed"]).toBe(42);
    expect(linksInto(store, "sampler_2")).toEqual({
      positive: "positive_2.conditioning",
      negative: "negative_2.conditioning",
    });
    expect(linksInto(store, "positive_2")).toEqual({});
    // The originals are untouched.
    expect(linksInto(store, "sampler")["positive"]).toBe("positive.conditioning");
  });

  it("with links, also reconnects the copies to the sources left behind", () => {
    const store = loadExample("txt2img.json");
    const clipboard = copySelection(store, SELECTION);
    const result = paste(store, clipboard, { offset: [0, 0], withLinks: true });
    expect(result.skipped).toEqual([]);
    expect(linksInto(store, "sampler_2")).toEqual({
      model: "checkpoint.model",
      positive: "positive_2.conditioning",
      negative: "negative_2.conditioning",
      latent: "latent.latent",
    });
    expect(linksInto(store, "positive_2")).toEqual({ clip: "checkpoint.clip" });
  });

  it("skips outside links whose source is gone, saying why", () => {
    const store = loadExample("txt2img.json");
    const clipboard = copySelection(store, ["sampler"]);
    removeItems(store, ["latent"]);
    const result = paste(store, clipboard, { offset: [0, 0], withLinks: true });
    expect(result.skipped).toEqual(['sampler_2.latent: there is no node or reroute "latent"']);
    expect(linksInto(store, "sampler_2")["model"]).toBe("checkpoint.model");
  });

  it("pastes as one undo step", () => {
    const store = loadExample("txt2img.json");
    const undo = new UndoManager(store);
    paste(store, copySelection(store, SELECTION), { offset: [10, 10], withLinks: true });
    undo.undo();
    expect(store.has("node", "sampler_2")).toBe(false);
    expect([...store.list("link")].some((link) => link.to.node.endsWith("_2"))).toBe(false);
    expect(undo.canUndo).toBe(false);
  });

  it("pastes a whole workflow file next to the current graph", () => {
    const store = loadExample("txt2img.json");
    const other = loadExample("img2img.json");
    const before = [...store.list("node")].length;
    paste(store, copySelection(other, [...other.list("node")].map((node) => node.id)), {
      offset: [0, 1000],
      withLinks: false,
    });
    expect([...store.list("node")].length).toBe(before + 8);
    expect(linksInto(store, "encode")).toEqual({ vae: "checkpoint_2.vae", image: "image.image" });
  });
});
