import { describe, expect, it } from "vitest";
import { connect } from "./connect";
import { createNode, moveItems, removeItems, setWidgetValue } from "./nodes";
import type { Change } from "./store";
import { loadExample } from "./test-support";
import { toWorkflow } from "./workflow";
import { UndoManager } from "./undo";

function setup(name = "txt2img.json") {
  const store = loadExample(name);
  let clock = 0;
  const undo = new UndoManager(store, { mergeWindowMs: 1000, now: () => clock });
  const changes: Change[] = [];
  store.listen((change) => changes.push(change));
  return {
    store,
    undo,
    changes,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

function sourceOf(store: ReturnType<typeof loadExample>, id: string): string | undefined {
  return store.get("link", id)?.from.node;
}

describe("UndoManager", () => {
  it("undoes and redoes node creation", () => {
    const { store, undo } = setup();
    createNode(store, "latent.upscale", [10, 10], { id: "upscale" });
    expect(undo.undoLabel).toBe("Add Latent Upscale");
    expect(undo.undo()).toBe(true);
    expect(store.has("node", "upscale")).toBe(false);
    expect(undo.redo()).toBe(true);
    expect(store.get("node", "upscale")?.inputs["method"]).toBe("nearest-exact");
  });

  it("undoes a wiring change step by step, restoring the replaced link", () => {
    const { store, undo } = setup();
    const original = toWorkflow(store);
    connect(store, { node: "negative", output: "conditioning" }, { node: "sampler", input: "positive" });
    connect(store, { node: "positive", output: "conditioning" }, { node: "sampler", input: "negative" });
    expect(sourceOf(store, "sampler:positive")).toBe("negative");
    undo.undo();
    expect(sourceOf(store, "sampler:negative")).toBe("negative");
    expect(sourceOf(store, "sampler:positive")).toBe("negative");
    undo.undo();
    expect(sourceOf(store, "sampler:positive")).toBe("positive");
    expect(toWorkflow(store)).toEqual(original);
    undo.redo();
    undo.redo();
    expect(sourceOf(store, "sampler:positive")).toBe("negative");
    expect(sourceOf(store, "sampler:negative")).toBe("positive");
  });

  it("restores a deleted node together with its links", () => {
    const { store, undo } = setup();
    const original = toWorkflow(store);
    removeItems(store, ["sampler"]);
    expect(store.has("link", "decode:latent")).toBe(false);
    undo.undo();
    expect(toWorkflow(store)).toEqual(original);
  });

  it("applies only the step's diff, never the whole graph", () => {
    const { store, undo, changes } = setup();
    setWidgetValue(store, "sampler", "seed", 7);
    undo.undo();
    const undone = changes.at(-1);
    expect(undone?.origin).toBe("undo");
    expect(Object.keys(undone?.diff.node.updated ?? {})).toEqual(["sampler"]);
    expect(undone?.diff.node.added).toEqual({});
    expect(undone?.diff.link).toEqual({ added: {}, updated: {}, removed: {} });
    expect(store.get("node", "sampler")?.inputs["seed"]).toBe(42);
  });

  it("merges typing into one widget within the time window", () => {
    const { store, undo, advance } = setup();
    for (const text of ["a", "a c", "a ca", "a cat"]) {
      setWidgetValue(store, "positive", "text", text);
      advance(200);
    }
    advance(5000); // a pause: the next edit is a new step
    setWidgetValue(store, "positive", "text", "a cat!");
    undo.undo();
    expect(store.get("node", "positive")?.inputs["text"]).toBe("a cat");
    undo.undo();
    expect(store.get("node", "positive")?.inputs["text"]).toBe(
      "a photo of a cat sitting on a windowsill, (golden hour:1.2), detailed",
    );
    expect(undo.canUndo).toBe(false);
  });

  it("does not merge edits of different widgets, or across breakMerge", () => {
    const { store, undo } = setup();
    setWidgetValue(store, "sampler", "seed", 1);
    setWidgetValue(store, "sampler", "steps", 30);
    setWidgetValue(store, "sampler", "steps", 31);
    undo.breakMerge();
    setWidgetValue(store, "sampler", "steps", 32);
    undo.undo();
    expect(store.get("node", "sampler")?.inputs["steps"]).toBe(31);
    undo.undo();
    expect(store.get("node", "sampler")?.inputs["steps"]).toBe(12);
    expect(store.get("node", "sampler")?.inputs["seed"]).toBe(1);
  });

  it("merges a drag by its gesture key", () => {
    const { store, undo } = setup();
    const [x, y] = store.get("node", "save")?.pos ?? [0, 0];
    for (let step = 1; step <= 10; step += 1) moveItems(store, new Map([["save", [x + step, y]]]), "drag:1");
    undo.undo();
    expect(store.get("node", "save")?.pos).toEqual([x, y]);
  });

  it("clears redo on a new edit", () => {
    const { store, undo } = setup();
    setWidgetValue(store, "sampler", "seed", 1);
    undo.undo();
    setWidgetValue(store, "sampler", "steps", 5);
    expect(undo.canRedo).toBe(false);
  });

  it("leaves remote edits alone", () => {
    const { store, undo } = setup();
    setWidgetValue(store, "sampler", "seed", 1);
    store.transact("Remote", (tx) => tx.update("node", "decode", (node) => ({ ...node, pos: [0, 0] })), {
      origin: "remote",
    });
    undo.undo();
    expect(store.get("node", "sampler")?.inputs["seed"]).toBe(42);
    expect(store.get("node", "decode")?.pos).toEqual([0, 0]);
    expect(undo.canUndo).toBe(false);
  });
});
