/**
 * Checks a laid-out graph the way a user sees it: every link drawn as the renderer's curve,
 * every node as its box. Shared by the layout tests and the script that arranges the example
 * files, so both judge the same thing.
 */

import { lowestCrossing, sampleCurve } from "./auto-layout";
import type { BoxOf, NodeBox } from "./auto-layout-arrange";
import type { Catalog } from "./catalog";
import type { NodeRecord, Rect, Vec2 } from "./records";
import type { StoreReader } from "./store";

/** What the renderer's node layout says about a node (canvas/geometry.ts `NodeLayout`). */
export interface DrawnNode {
  readonly rect: Rect;
  readonly inputs: readonly { readonly name: string; readonly at: Vec2 }[];
  readonly outputs: readonly { readonly name: string; readonly at: Vec2 }[];
}

/** A drawn node's box, with socket positions made relative to its corner. */
export function boxFromLayout(layout: DrawnNode): NodeBox {
  const [x, y, width, height] = layout.rect;
  const relative = (at: Vec2 | undefined): Vec2 | undefined => (at === undefined ? undefined : [at[0] - x, at[1] - y]);
  return {
    size: [width, height],
    inputAt: (name) => relative(layout.inputs.find((slot) => slot.name === name)?.at),
    outputAt: (name) => relative(layout.outputs.find((slot) => slot.name === name)?.at),
  };
}

/** Boxes from a layout function over a catalog (the renderer's `nodeLayout`). */
export function canvasBoxOf(catalog: Catalog, layoutOf: (catalog: Catalog, node: NodeRecord) => DrawnNode): BoxOf {
  return (node) => boxFromLayout(layoutOf(catalog, node));
}

export interface LayoutFault {
  readonly link: string;
  readonly problem: string;
}

/** Links that cut a node they do not touch, or that run right to left. */
export function layoutFaults(store: StoreReader, boxOf: BoxOf): LayoutFault[] {
  const faults: LayoutFault[] = [];
  const nodes = [...store.list("node")].map((node) => ({ node, box: boxOf(node) }));
  const byId = new Map(nodes.map((entry) => [entry.node.id, entry]));
  for (const link of store.list("link")) {
    const from = byId.get(link.from.node);
    const to = byId.get(link.to.node);
    if (from === undefined || to === undefined) continue;
    const fromAt = from.box.outputAt(link.from.output);
    const toAt = to.box.inputAt(link.to.input);
    if (fromAt === undefined || toAt === undefined) continue;
    if (from.node.pos[0] + from.box.size[0] >= to.node.pos[0]) faults.push({ link: link.id, problem: `runs right to left (${from.node.id} → ${to.node.id})` });
    const curve = sampleCurve([from.node.pos[0] + fromAt[0], from.node.pos[1] + fromAt[1]], [to.node.pos[0] + toAt[0], to.node.pos[1] + toAt[1]]);
    for (const other of nodes) {
      if (other === from || other === to) continue;
      const rect = [other.node.pos[0], other.node.pos[1], other.box.size[0], other.box.size[1]] as const;
      if (lowestCrossing(curve, rect) !== undefined) faults.push({ link: link.id, problem: `crosses node ${other.node.id}` });
    }
  }
  return faults;
}
