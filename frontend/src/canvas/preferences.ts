/**
 * Drawing and editing preferences the settings dialog changes (ui/settings.ts keeps them on
 * the server): link style, snap to grid, node badges. They are view state, like the theme:
 * never in the document, never undone. The canvas reads them when it draws or moves
 * nodes; a change marks the canvas dirty.
 */

import type { Vec2 } from "../model";

export type LinkStyle = "spline" | "straight" | "orthogonal";
export type BadgeMode = "none" | "id" | "id+pack";

export interface Preferences {
  linkStyle: LinkStyle;
  snapToGrid: boolean;
  gridSize: number;
  badges: BadgeMode;
}

export const LINK_STYLES: readonly LinkStyle[] = ["spline", "straight", "orthogonal"];
export const BADGE_MODES: readonly BadgeMode[] = ["none", "id", "id+pack"];
export const DEFAULT_PREFERENCES: Readonly<Preferences> = { linkStyle: "spline", snapToGrid: false, gridSize: 20, badges: "none" };

export const preferences: Preferences = { ...DEFAULT_PREFERENCES };
/** The pack of each node type (from the server), for pack badges. */
export const packOf = new Map<string, string>();

/** Copies known, valid keys of `stored` into the preferences; the rest keep their values. */
export function applyPreferences(stored: Readonly<Record<string, unknown>>): void {
  const { linkStyle, snapToGrid, gridSize, badges } = stored;
  if (LINK_STYLES.includes(linkStyle as LinkStyle)) preferences.linkStyle = linkStyle as LinkStyle;
  if (typeof snapToGrid === "boolean") preferences.snapToGrid = snapToGrid;
  if (typeof gridSize === "number" && Number.isInteger(gridSize) && gridSize >= 2 && gridSize <= 200) preferences.gridSize = gridSize;
  if (BADGE_MODES.includes(badges as BadgeMode)) preferences.badges = badges as BadgeMode;
}

/** A moved node's position: rounded, and on the grid when snapping is on. */
export function snapPoint(point: Vec2): Vec2 {
  if (!preferences.snapToGrid) return [Math.round(point[0]), Math.round(point[1])];
  const size = preferences.gridSize;
  return [Math.round(point[0] / size) * size, Math.round(point[1] / size) * size];
}

/** Adds a link's path from output to input to the current canvas path, in the chosen style. */
export function traceLink(ctx: CanvasRenderingContext2D, from: Vec2, to: Vec2, style: LinkStyle = preferences.linkStyle): void {
  ctx.moveTo(from[0], from[1]);
  if (style === "straight") {
    ctx.lineTo(to[0], to[1]);
    return;
  }
  if (style === "orthogonal") {
    for (const [x, y] of orthogonalPoints(from, to)) ctx.lineTo(x, y);
    return;
  }
  const reach = Math.max(40, Math.abs(to[0] - from[0]) / 2);
  ctx.bezierCurveTo(from[0] + reach, from[1], to[0] - reach, to[1], to[0], to[1]);
}

/** The corners of an orthogonal link after its start: out right, across, in from the left. */
export function orthogonalPoints(from: Vec2, to: Vec2): Vec2[] {
  const stub = 20;
  if (to[0] - from[0] >= 2 * stub) {
    const middle = Math.round((from[0] + to[0]) / 2);
    return [[middle, from[1]], [middle, to[1]], to];
  }
  // The input is left of the output: go round, through the gap between the two rows.
  const middleY = Math.round((from[1] + to[1]) / 2);
  return [[from[0] + stub, from[1]], [from[0] + stub, middleY], [to[0] - stub, middleY], [to[0] - stub, to[1]], to];
}
