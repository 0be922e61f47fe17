import { describe, expect, it } from "vitest";
import { nodeLayout } from "../canvas/geometry";
import { addGroup, toWorkflow } from "../model";
import { canvasBoxOf } from "../model/auto-layout-support";
import { catalog, loadExample } from "../model/test-support";
import { UndoManager } from "../model/undo";
import {
  cloneNodes,
  deleteLink,
  fitGroupToNodes,
  groupNodes,
  insertReroute,
  isPinned,
  nodeColor,
  nodesByCategory,
  removeGroup,
  runToHerePlan,
  setGroupColor,
  setNodeColor,
  togglePinned,
} from "./menu-actions";

const boxOf = canvasBoxOf(catalog, nodeLayout);

function setup() {
  const store = loadExample("txt2img.json");
  const undo = new UndoManager(store, { mergeWindowMs: 0, now: () => 0 });
  return { store, undo };
}

describe("node menu", () => {
  it("colours nodes with ComfyUI's colour keys, saved in ui, and clears them", () => {
    const { store, undo } = setup();
    setNodeColor(store, ["sampler", "decode"], "green");
    expect(nodeColor(store.get("node", "sampler")!)).toEqual({ color: "#232", bgcolor: "#353" });
    const saved = toWorkflow(store).nodes["decode"]?.ui;
    expect(saved).toEqual({ pos: store.get("node", "decode")?.pos, color: "#232", bgcolor: "#353" });
    expect(undo.undoLabel).toBe("Colour green");
    setNodeColor(store, ["sampler"], undefined);
    expect(store.get("node", "sampler")?.extraUi).toBeUndefined();
    expect(() => setNodeColor(store, ["sampler"], "mauve")).toThrow(
      'no node colour "mauve"; choose one of red, brown, green, blue, pale_blue, cyan, purple, yellow, black',
    );
  });

  it("pins all when any is unpinned, then unpins all", () => {
    const { store } = setup();
    togglePinned(store, ["sampler"]);
    expect(togglePinned(store, ["sampler", "decode"])).toBe(true);
    expect([isPinned(store.get("node", "sampler")!), isPinned(store.get("node", "decode")!)]).toEqual([true, true]);
    expect(togglePinned(store, ["sampler", "decode"])).toBe(false);
    expect(store.get("node", "decode")?.extraUi).toBeUndefined();
  });

  it("clones nodes with their values and inner links, not links from outside", () => {
    const { store, undo } = setup();
    const [sampler, decode] = cloneNodes(store, ["sampler", "decode"]);
    expect([sampler, decode]).toEqual(["sampler_2", "decode_2"]);
    expect(store.get("node", "sampler_2")?.inputs).toEqual(store.get("node", "sampler")?.inputs);
    expect(store.get("node", "sampler_2")?.pos).toEqual([(store.get("node", "sampler")?.pos[0] ?? 0) + 30, (store.get("node", "sampler")?.pos[1] ?? 0) + 30]);
    expect(store.get("link", "decode_2:latent")?.from).toEqual({ node: "sampler_2", output: "latent" });
    expect(store.has("link", "sampler_2:model")).toBe(false);
    expect(undo.undoLabel).toBe("Paste");
  });

  it("plans run to here: the node and what it needs, dependencies first", () => {
    const { store } = setup();
    expect(runToHerePlan(store, "sampler")).toEqual(["checkpoint", "latent", "negative", "positive", "sampler"]);
    expect(runToHerePlan(store, "positive")).toEqual(["checkpoint", "positive"]);
    expect(runToHerePlan(store, "missing")).toEqual([]);
  });
});

describe("link menu", () => {
  it("splits a link with a reroute in one undo step, and the plan sees through it", () => {
    const { store, undo } = setup();
    const reroute = insertReroute(store, "decode:latent", [700.4, 300.6]);
    expect(reroute).toBe("reroute");
    expect(store.get("reroute", "reroute")).toEqual({ id: "reroute", pos: [700, 301], type: "LATENT" });
    expect(store.get("link", "reroute:in")?.from).toEqual({ node: "sampler", output: "latent" });
    expect(store.get("link", "decode:latent")?.from).toEqual({ node: "reroute", output: "out" });
    expect(runToHerePlan(store, "decode")).toEqual(["checkpoint", "latent", "negative", "positive", "sampler", "decode"]);
    expect(undo.undoLabel).toBe("Add reroute");
    undo.undo();
    expect(store.has("reroute", "reroute")).toBe(false);
    expect(store.get("link", "decode:latent")?.from).toEqual({ node: "sampler", output: "latent" });
  });

  it("deletes a link", () => {
    const { store } = setup();
    expect(deleteLink(store, "decode:vae")).toBe(true);
    expect(store.has("link", "decode:vae")).toBe(false);
    expect(deleteLink(store, "decode:vae")).toBe(false);
  });
});

describe("group menu", () => {
  it("fits a group to its nodes, selects them, colours and removes it", () => {
    const { store } = setup();
    const positive = store.get("node", "positive")!;
    const negative = store.get("node", "negative")!;
    const top = Math.min(positive.pos[1], negative.pos[1]);
    const group = addGroup(store, "Prompts", [positive.pos[0] - 100, top - 100, 600, 700]);
    const members = groupNodes(store, group.id, boxOf);
    expect(members).toContain("positive");
    expect(fitGroupToNodes(store, group.id, boxOf)).toBe(true);
    const rects = members.map((id) => {
      const node = store.get("node", id)!;
      return [node.pos[0], node.pos[1], ...boxOf(node).size] as const;
    });
    const left = Math.min(...rects.map((rect) => rect[0]));
    const right = Math.max(...rects.map((rect) => rect[0] + rect[2]));
    expect(store.get("group", group.id)?.rect.slice(0, 1)).toEqual([left - 30]);
    expect(store.get("group", group.id)?.rect[2]).toBe(right - left + 60);
    setGroupColor(store, group.id, "pale_blue");
    expect(store.get("group", group.id)?.color).toBe("#3f789e");
    removeGroup(store, group.id);
    expect(store.has("group", group.id)).toBe(false);
    expect(store.has("node", "positive")).toBe(true);
  });

  it("fits nothing for an empty group", () => {
    const { store } = setup();
    const group = addGroup(store, "Empty", [-5000, -5000, 100, 100]);
    expect(fitGroupToNodes(store, group.id, boxOf)).toBe(false);
    expect(store.get("group", group.id)?.rect).toEqual([-5000, -5000, 100, 100]);
  });
});

describe("canvas menu", () => {
  it("lists nodes by category, sorted", () => {
    const groups = nodesByCategory(catalog);
    const categories = groups.map((group) => group.category);
    expect(categories).toEqual([...categories].sort((a, b) => a.localeCompare(b)));
    const sampling = groups.find((group) => group.category === "sampling");
    expect(sampling?.specs.map((spec) => spec.display_name)).toEqual([...(sampling?.specs ?? [])].map((spec) => spec.display_name).sort((a, b) => a.localeCompare(b)));
    expect(groups.reduce((count, group) => count + group.specs.length, 0)).toBe(catalog.specs.length);
  });
});
