/**
 * Viewport math: where the world (graph coordinates, what the store saves) lands on screen.
 * screen = world * scale + offset. Kept pure and immutable so pan/zoom are testable without a
 * DOM and the renderer can compare "did the view change?" by reference.
 */

import type { Rect, Vec2 } from "../model";

export interface Viewport {
  readonly scale: number;
  readonly offset: Vec2;
}

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 4;
/** Below this zoom, nodes are drawn as plain boxes: text would be unreadable anyway. */
export const SIMPLIFY_BELOW = 0.6;

export const IDENTITY: Viewport = { scale: 1, offset: [0, 0] };

export function toScreen(view: Viewport, point: Vec2): Vec2 {
  return [point[0] * view.scale + view.offset[0], point[1] * view.scale + view.offset[1]];
}

export function toWorld(view: Viewport, point: Vec2): Vec2 {
  return [(point[0] - view.offset[0]) / view.scale, (point[1] - view.offset[1]) / view.scale];
}

export function pan(view: Viewport, dx: number, dy: number): Viewport {
  return { scale: view.scale, offset: [view.offset[0] + dx, view.offset[1] + dy] };
}

export function clampScale(scale: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
}

/** Zooms by `factor` keeping the world point under `anchor` (screen) where it is. */
export function zoomAt(view: Viewport, anchor: Vec2, factor: number): Viewport {
  const scale = clampScale(view.scale * factor);
  const world = toWorld(view, anchor);
  return { scale, offset: [anchor[0] - world[0] * scale, anchor[1] - world[1] * scale] };
}

/** The world rectangle a screen of `size` shows. */
export function visibleWorldRect(view: Viewport, size: Vec2): Rect {
  const [x, y] = toWorld(view, [0, 0]);
  return [x, y, size[0] / view.scale, size[1] / view.scale];
}

/** The view that shows `bounds` centred in a screen of `size` with `margin` px around it. */
export function fitBounds(bounds: Rect, size: Vec2, margin = 40, maxScale = 1.5): Viewport {
  const [x, y, width, height] = bounds;
  if (width <= 0 || height <= 0) return { scale: 1, offset: [size[0] / 2 - x, size[1] / 2 - y] };
  const scale = clampScale(
    Math.min(maxScale, (size[0] - 2 * margin) / width, (size[1] - 2 * margin) / height),
  );
  return {
    scale,
    offset: [(size[0] - width * scale) / 2 - x * scale, (size[1] - height * scale) / 2 - y * scale],
  };
}

export function rectsIntersect(a: Rect, b: Rect): boolean {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

export function rectContains(rect: Rect, point: Vec2): boolean {
  return point[0] >= rect[0] && point[0] <= rect[0] + rect[2] && point[1] >= rect[1] && point[1] <= rect[1] + rect[3];
}

/** The smallest rectangle around all of `rects`, or undefined for none. */
export function unionRects(rects: Iterable<Rect>): Rect | undefined {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y, width, height] of rects) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x + width);
    maxY = Math.max(maxY, y + height);
  }
  return minX === Infinity ? undefined : [minX, minY, maxX - minX, maxY - minY];
}

/** Normalises a drag from `a` to `b` into a rectangle with positive size. */
export function rectFromCorners(a: Vec2, b: Vec2): Rect {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1])];
}
