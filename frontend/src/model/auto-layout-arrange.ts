/**
 * The Arrange command over the store: the graph's nodes and reroutes go through the layered
 * layout (auto-layout.ts) and move in one transaction, so one undo puts everything back.
 * Node sizes and socket offsets come from the caller (the renderer's layout in the app, the
 * same geometry in tests), which keeps drawing out of the model. The arranged block keeps
 * its top-left corner; groups around arranged nodes are refitted to them.
 */

import { layeredLayout, type LayoutEdge, type LayoutItem } from "./auto-layout";
import type { NodeRecord, Rect, Vec2 } from "./records";
import type { Store, StoreReader } from "./store";

/** A node's size and where its sockets are, relative to its top-left corner. */
export interface NodeBox {
  readonly size: Vec2;
  inputAt(name: string): Vec2 | undefined;
  outputAt(name: string): Vec2 | undefined;
}

export type BoxOf = (node: NodeRecord) => NodeBox;

/** A reroute is drawn as a dot of this size around its position. */
const REROUTE_BOX = 14;
const GROUP_PADDING = 30;
const GROUP_TITLE = 20;

/**
 * New top-left positions (nodes) and centres (reroutes) for `ids` (default: everything),
 * laid out from the links among them.
 */
export function arrangePositions(store: StoreReader, boxOf: BoxOf, ids?: Iterable<string>): Map<string, Vec2> {
  const chosen = ids === undefined ? undefined : new Set(ids);
  const include = (id: string): boolean => chosen === undefined || chosen.has(id);
  const boxes = new Map<string, NodeBox>();
  const items: LayoutItem[] = [];
  const origins: Vec2[] = [];
  for (const node of store.list("node")) {
    if (!include(node.id)) continue;
    const box = boxOf(node);
    boxes.set(node.id, box);
    items.push({ id: node.id, size: box.size });
    origins.push(node.pos);
  }
  const reroutes = new Set<string>();
  for (const reroute of store.list("reroute")) {
    if (!include(reroute.id)) continue;
    reroutes.add(reroute.id);
    items.push({ id: reroute.id, size: [REROUTE_BOX, REROUTE_BOX] });
    origins.push([reroute.pos[0] - REROUTE_BOX / 2, reroute.pos[1] - REROUTE_BOX / 2]);
  }
  if (items.length === 0) return new Map();
  const centre: Vec2 = [REROUTE_BOX / 2, REROUTE_BOX / 2];
  const edges: LayoutEdge[] = [];
  for (const link of store.list("link")) {
    if (!include(link.from.node) || !include(link.to.node)) continue;
    const fromAt = reroutes.has(link.from.node) ? centre : boxes.get(link.from.node)?.outputAt(link.from.output);
    const toAt = reroutes.has(link.to.node) ? centre : boxes.get(link.to.node)?.inputAt(link.to.input);
    if (fromAt !== undefined && toAt !== undefined) edges.push({ from: link.from.node, to: link.to.node, fromAt, toAt });
  }
  const origin: Vec2 = [Math.min(...origins.map((pos) => pos[0])), Math.min(...origins.map((pos) => pos[1]))];
  const positions = layeredLayout({ items, edges }, { origin });
  for (const id of reroutes) {
    const pos = positions.get(id);
    if (pos !== undefined) positions.set(id, [pos[0] + REROUTE_BOX / 2, pos[1] + REROUTE_BOX / 2]);
  }
  return positions;
}

/** Arranges the graph (or `ids`) as one undo step; returns how many items moved. */
export function arrange(store: Store, boxOf: BoxOf, ids?: Iterable<string>): number {
  const positions = arrangePositions(store, boxOf, ids);
  const members = groupMembers(store, boxOf);
  let moved = 0;
  store.transact("Arrange", (tx) => {
    for (const [id, pos] of positions) {
      const node = tx.get("node", id);
      if (node !== undefined && (node.pos[0] !== pos[0] || node.pos[1] !== pos[1])) {
        tx.update("node", id, (current) => ({ ...current, pos }));
        moved += 1;
      }
      const reroute = tx.get("reroute", id);
      if (reroute !== undefined && (reroute.pos[0] !== pos[0] || reroute.pos[1] !== pos[1])) {
        tx.update("reroute", id, (current) => ({ ...current, pos }));
        moved += 1;
      }
    }
    for (const [groupId, nodeIds] of members) {
      if (!nodeIds.some((id) => positions.has(id))) continue;
      const rect = fitRect(nodeIds.map((id) => tx.get("node", id)).filter((node) => node !== undefined).map((node) => boxRect(node, boxOf)));
      if (rect !== undefined) tx.update("group", groupId, (group) => ({ ...group, rect }));
    }
  });
  return moved;
}

/** Which nodes each group holds now: those whose box lies mostly inside it. */
export function groupMembers(store: StoreReader, boxOf: BoxOf): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const group of store.list("group")) {
    const [x, y, width, height] = group.rect;
    const inside = [...store.list("node")].filter((node) => {
      const [nx, ny, nw, nh] = boxRect(node, boxOf);
      const cx = nx + nw / 2;
      const cy = ny + nh / 2;
      return cx >= x && cx <= x + width && cy >= y && cy <= y + height;
    });
    members.set(group.id, inside.map((node) => node.id));
  }
  return members;
}

/** The rect a group needs around these boxes (room for its title above), or undefined for none. */
export function fitRect(rects: readonly Rect[]): Rect | undefined {
  if (rects.length === 0) return undefined;
  const left = Math.min(...rects.map((rect) => rect[0]));
  const top = Math.min(...rects.map((rect) => rect[1]));
  const right = Math.max(...rects.map((rect) => rect[0] + rect[2]));
  const bottom = Math.max(...rects.map((rect) => rect[1] + rect[3]));
  return [left - GROUP_PADDING, top - GROUP_PADDING - GROUP_TITLE, right - left + 2 * GROUP_PADDING, bottom - top + 2 * GROUP_PADDING + GROUP_TITLE];
}

function boxRect(node: NodeRecord, boxOf: BoxOf): Rect {
  const size = boxOf(node).size;
  return [node.pos[0], node.pos[1], size[0], size[1]];
}
