/**
 * Align and distribute the selected nodes, each one transaction (one undo step). Alignment
 * lines the chosen edge (or centre) of every node up with the extreme one; distribution
 * spaces nodes so the gaps between neighbours are equal, keeping the outermost two where
 * they are. Sizes come from `sizeOf` (the canvas knows drawn sizes; the model does not).
 */

import { moveItems } from "./nodes";
import type { Rect, Vec2 } from "./records";
import type { Store } from "./store";

export type Alignment = "left" | "right" | "top" | "bottom" | "centre-x" | "centre-y";
export type Axis = "horizontal" | "vertical";

/** Where each node goes so that its `edge` lines up (nodes given as world rects). */
export function alignedPositions(rects: ReadonlyMap<string, Rect>, edge: Alignment): Map<string, Vec2> {
  const list = [...rects.values()];
  const target = {
    left: Math.min(...list.map(([x]) => x)),
    right: Math.max(...list.map(([x, , w]) => x + w)),
    top: Math.min(...list.map(([, y]) => y)),
    bottom: Math.max(...list.map(([, y, , h]) => y + h)),
    "centre-x": (Math.min(...list.map(([x]) => x)) + Math.max(...list.map(([x, , w]) => x + w))) / 2,
    "centre-y": (Math.min(...list.map(([, y]) => y)) + Math.max(...list.map(([, y, , h]) => y + h))) / 2,
  }[edge];
  const positions = new Map<string, Vec2>();
  for (const [id, [x, y, w, h]] of rects) {
    const place: Record<Alignment, Vec2> = {
      left: [target, y],
      right: [target - w, y],
      top: [x, target],
      bottom: [x, target - h],
      "centre-x": [target - w / 2, y],
      "centre-y": [x, target - h / 2],
    };
    const [px, py] = place[edge];
    positions.set(id, [Math.round(px), Math.round(py)]);
  }
  return positions;
}

/** Where each node goes so the gaps along `axis` are equal (fewer than three: unchanged). */
export function distributedPositions(rects: ReadonlyMap<string, Rect>, axis: Axis): Map<string, Vec2> {
  const along = axis === "horizontal" ? 0 : 1;
  const entries = [...rects].sort(([, a], [, b]) => a[along] - b[along]);
  const positions = new Map<string, Vec2>(entries.map(([id, [x, y]]) => [id, [x, y]]));
  if (entries.length < 3) return positions;
  const first = entries[0]?.[1] as Rect;
  const last = entries.at(-1)?.[1] as Rect;
  const span = last[along] + last[along + 2]! - first[along];
  const total = entries.reduce((sum, [, rect]) => sum + rect[along + 2]!, 0);
  const gap = (span - total) / (entries.length - 1);
  let cursor = first[along];
  for (const [id, rect] of entries) {
    const position: [number, number] = [rect[0], rect[1]];
    position[along] = Math.round(cursor);
    positions.set(id, position);
    cursor += rect[along + 2]! + gap;
  }
  return positions;
}

export function alignNodes(store: Store, rects: ReadonlyMap<string, Rect>, edge: Alignment): void {
  if (rects.size >= 2) moveItems(store, alignedPositions(rects, edge));
}

export function distributeNodes(store: Store, rects: ReadonlyMap<string, Rect>, axis: Axis): void {
  if (rects.size >= 3) moveItems(store, distributedPositions(rects, axis));
}
