import { describe, expect, it } from "vitest";
import { linkCurve, bezierPoint, nodeLayout } from "../canvas/geometry";
import { layeredLayout, sampleCurve } from "./auto-layout";
import { arrange, arrangePositions, type BoxOf } from "./auto-layout-arrange";
import { canvasBoxOf, layoutFaults } from "./auto-layout-support";
import { parseCatalog } from "./catalog";
import catalogAll from "./fixtures/catalog-all.json";
import { addGroup } from "./groups";
import { moveItems } from "./nodes";
import type { Vec2 } from "./records";
import { exampleWorkflows, loadExample as loadWith } from "./test-support";
import { UndoManager } from "./undo";

/** The renderer's geometry over the full catalog (every node the examples use): what the user sees. */
const fullCatalog = parseCatalog(catalogAll);
const boxOf: BoxOf = canvasBoxOf(fullCatalog, nodeLayout);
const loadExample = (name: string) => loadWith(name, fullCatalog);

const box = (id: string, height = 100) => ({ id, size: [200, height] as Vec2 });
const edge = (from: string, to: string) => ({ from, to, fromAt: [200, 40] as Vec2, toAt: [0, 40] as Vec2 });

describe("layeredLayout", () => {
  it("puts a chain in one row, one column per step", () => {
    const positions = layeredLayout({ items: [box("c"), box("a"), box("b")], edges: [edge("a", "b"), edge("b", "c")] });
    expect(positions).toEqual(new Map([["a", [40, 60]], ["b", [320, 60]], ["c", [600, 60]]]));
  });

  it("moves a pure source next to its first consumer", () => {
    const positions = layeredLayout({
      items: [box("a"), box("b"), box("c"), box("late")],
      edges: [edge("a", "b"), edge("b", "c"), edge("late", "c")],
    });
    expect(positions.get("late")?.[0]).toBe(320);
    expect(positions.get("c")?.[0]).toBe(600);
  });

  it("keeps a skipping link clear of the node in the column it passes", () => {
    // a feeds b and c; b feeds c: the a → c link passes b's column.
    const items = [box("a", 60), box("b", 200), box("c", 60)];
    const edges = [edge("a", "b"), edge("b", "c"), { from: "a", to: "c", fromAt: [200, 20] as Vec2, toAt: [0, 20] as Vec2 }];
    const positions = layeredLayout({ items, edges });
    const [ax, ay] = positions.get("a") as Vec2;
    const [cx, cy] = positions.get("c") as Vec2;
    const [bx, by] = positions.get("b") as Vec2;
    const curve = sampleCurve([ax + 200, ay + 20], [cx, cy + 20]);
    const inB = curve.filter(([x]) => x >= bx && x <= bx + 200);
    expect(inB.length).toBeGreaterThan(0);
    expect(inB.every(([, y]) => y < by || y > by + 200)).toBe(true);
  });

  it("samples the same curve the renderer draws", () => {
    const from: Vec2 = [10, 20];
    const to: Vec2 = [400, 260];
    const ours = sampleCurve(from, to, 4);
    const drawn = [0, 0.25, 0.5, 0.75, 1].map((t) => bezierPoint(linkCurve(from, to), t));
    expect(ours).toEqual(drawn);
  });
});

describe("arrange", () => {
  it("is one undo step that puts every node back", () => {
    const store = loadExample("txt2img.json");
    const undo = new UndoManager(store, { mergeWindowMs: 0, now: () => 0 });
    moveItems(store, new Map([["save", [0, 0] as Vec2], ["checkpoint", [900, 900] as Vec2]]));
    const before = [...store.list("node")].map((node) => [node.id, node.pos]);
    expect(arrange(store, boxOf)).toBeGreaterThan(0);
    expect(undo.undoLabel).toBe("Arrange");
    expect(layoutFaults(store, boxOf)).toEqual([]);
    undo.undo();
    expect([...store.list("node")].map((node) => [node.id, node.pos])).toEqual(before);
  });

  it("lays txt2img out left to right in the expected columns", () => {
    const store = loadExample("txt2img.json");
    const positions = arrangePositions(store, boxOf);
    const column = (id: string): number => positions.get(id)?.[0] ?? NaN;
    expect(column("checkpoint")).toBeLessThan(column("positive"));
    expect(column("positive")).toBe(column("negative"));
    expect(column("latent")).toBe(column("positive"));
    expect(column("positive")).toBeLessThan(column("sampler"));
    expect(column("sampler")).toBeLessThan(column("decode"));
    expect(column("decode")).toBeLessThan(column("save"));
  });

  it("refits a group around the nodes it held", () => {
    const store = loadExample("txt2img.json");
    const group = addGroup(store, "Prompts", [330, 40, 600, 300]);
    arrange(store, boxOf);
    const rect = store.get("group", group.id)?.rect;
    const positive = store.get("node", "positive")?.pos as Vec2;
    expect(rect?.[0]).toBe(positive[0] - 30);
  });

  it("arranges only the chosen nodes, keeping their corner", () => {
    const store = loadExample("txt2img.json");
    const positions = arrangePositions(store, boxOf, ["sampler", "decode", "save"]);
    expect([...positions.keys()].sort()).toEqual(["decode", "sampler", "save"]);
    const corner = Math.min(...["sampler", "decode", "save"].map((id) => store.get("node", id)?.pos[0] ?? 0));
    expect(positions.get("sampler")?.[0]).toBe(corner);
  });
});

describe("every example workflow", () => {
  for (const name of exampleWorkflows().keys()) {
    it(`${name} is laid out left to right, no link crossing a node`, () => {
      const store = loadExample(name);
      expect(layoutFaults(store, boxOf)).toEqual([]);
      // The committed positions are what Arrange gives, so Arrange on an example changes nothing.
      const positions = arrangePositions(store, boxOf);
      for (const node of store.list("node")) expect([node.id, positions.get(node.id)]).toEqual([node.id, node.pos]);
    });
  }

  it("arranges a scrambled example without faults", () => {
    for (const name of exampleWorkflows().keys()) {
      const store = loadExample(name);
      const scrambled = new Map([...store.list("node")].map((node, index) => [node.id, [((index * 7) % 5) * 50, ((index * 3) % 4) * 40] as Vec2]));
      moveItems(store, scrambled);
      arrange(store, boxOf);
      expect([name, layoutFaults(store, boxOf)]).toEqual([name, []]);
    }
  });
});
