/**
 * Where each part of a node sits, in world units: the title bar, one row per socket pair
 * (inputs on the left, outputs on the right), then one row per widget. Derived from the
 * record and its catalog spec only, and cached per record object: records are immutable,
 * so a cached layout can never go stale, and a WeakMap lets it go with the record.
 *
 * A node the catalog does not know has no spec. A ComfyUI placeholder (`comfy:` type) takes
 * its sockets from what the imported file said (model/placeholder.ts): one row per input it
 * listed or literal it kept, outputs named by index and labelled with ComfyUI's names. Any
 * other unknown node gets the bare title-bar box; its links still draw, to its edges
 * (see `fallbackSlot`).
 */

import { placeholderOf, type Catalog, type InputSpec, type NodeRecord, type NodeSpec, type Placeholder, type Rect, type Vec2 } from "../model";

export const TITLE_HEIGHT = 26;
export const SOCKET_ROW = 20;
export const WIDGET_ROW = 22;
export const MULTILINE_ROWS = 3;
export const DEFAULT_WIDTH = 240;
export const COLLAPSED_WIDTH = 160;
export const SOCKET_RADIUS = 5;
export const ACTION_ROW = 24;
export const PLOT_HEIGHT = 64;
/** How close (world units) a pointer must be to a socket to grab it. */
export const SOCKET_HIT = 10;

export interface SocketSlot {
  readonly name: string;
  readonly type: string;
  readonly at: Vec2;
  /** What to show when it differs from `name` (a placeholder output "0" shows "IMAGE"). */
  readonly label?: string;
}

export interface WidgetSlot {
  readonly input: InputSpec;
  readonly rect: Rect;
  /** The dot a link of the widget's type plugs into (left edge of the row). */
  readonly at: Vec2;
}

export type NodeActionId = "upload" | "edit-mask";

/** A button drawn in the node body; `input` is the widget it acts on. */
export interface ActionSlot {
  readonly id: NodeActionId;
  readonly label: string;
  readonly input: string;
  readonly rect: Rect;
}

/** Where a SIGMAS output's curve is drawn. */
export interface PlotSlot {
  readonly output: string;
  readonly rect: Rect;
}

export interface NodeLayout {
  readonly rect: Rect;
  readonly spec: NodeSpec | undefined;
  readonly inputs: readonly SocketSlot[];
  readonly outputs: readonly SocketSlot[];
  readonly widgets: readonly WidgetSlot[];
  /** Set for a ComfyUI placeholder node: what the imported file said about it. */
  readonly placeholder?: Placeholder;
  /** A placeholder's rows that hold a kept literal: values, shown without a socket dot unless linked. */
  readonly valueRows?: ReadonlySet<string>;
  readonly actions?: readonly ActionSlot[];
  readonly plots?: readonly PlotSlot[];
}

const cache = new WeakMap<NodeRecord, NodeLayout>();

export function nodeLayout(catalog: Catalog, node: NodeRecord): NodeLayout {
  const cached = cache.get(node);
  if (cached !== undefined && cached.spec === catalog.get(node.type)) return cached;
  const layout = computeLayout(catalog.get(node.type), node);
  cache.set(node, layout);
  return layout;
}

function computeLayout(spec: NodeSpec | undefined, node: NodeRecord): NodeLayout {
  const placeholder = spec === undefined ? placeholderOf(node) : undefined;
  if (placeholder !== undefined) return placeholderLayout(placeholder, node);
  const [x, y] = node.pos;
  const socketInputs = spec?.inputs.filter((input) => input.kind === "socket") ?? [];
  const widgetInputs = spec?.inputs.filter((input) => input.kind === "widget") ?? [];
  const outputs = spec?.outputs ?? [];
  if (node.collapsed) {
    const width = COLLAPSED_WIDTH;
    const mid = y + TITLE_HEIGHT / 2;
    return {
      rect: [x, y, width, TITLE_HEIGHT],
      spec,
      inputs: [...socketInputs, ...widgetInputs].map((input) => ({ name: input.name, type: input.type, at: [x, mid] })),
      outputs: outputs.map((output) => ({ name: output.name, type: output.type, at: [x + width, mid] })),
      widgets: [],
    };
  }
  const width = node.size?.[0] ?? DEFAULT_WIDTH;
  const rows = Math.max(socketInputs.length, outputs.length);
  const socketY = (index: number): number => y + TITLE_HEIGHT + SOCKET_ROW * index + SOCKET_ROW / 2;
  const widgets: WidgetSlot[] = [];
  let rowTop = y + TITLE_HEIGHT + rows * SOCKET_ROW + 4;
  for (const input of widgetInputs) {
    const height = input.multiline === true ? WIDGET_ROW * MULTILINE_ROWS : WIDGET_ROW;
    widgets.push({ input, rect: [x + 8, rowTop + 2, width - 16, height - 4], at: [x, rowTop + WIDGET_ROW / 2] });
    rowTop += height;
  }
  const actions: ActionSlot[] = [];
  const imageInput = spec === undefined ? undefined : imageInputOf(spec);
  if (imageInput !== undefined) {
    const half = (width - 16 - 6) / 2;
    const top = rowTop + 3;
    actions.push(
      { id: "upload", label: "Upload…", input: imageInput, rect: [x + 8, top, half, ACTION_ROW - 6] },
      { id: "edit-mask", label: "Edit mask…", input: imageInput, rect: [x + 8 + half + 6, top, half, ACTION_ROW - 6] },
    );
    rowTop += ACTION_ROW;
  }
  const plots: PlotSlot[] = [];
  for (const output of outputs) {
    if (output.type !== "SIGMAS") continue;
    plots.push({ output: output.name, rect: [x + 8, rowTop + 4, width - 16, PLOT_HEIGHT - 8] });
    rowTop += PLOT_HEIGHT;
  }
  const contentHeight = rowTop - y + 6;
  const height = Math.max(contentHeight, node.size?.[1] ?? 0);
  return {
    rect: [x, y, width, height],
    spec,
    inputs: [
      ...socketInputs.map((input, index) => ({ name: input.name, type: input.type, at: [x, socketY(index)] as Vec2 })),
      ...widgets.map((widget) => ({ name: widget.input.name, type: widget.input.type, at: widget.at })),
    ],
    outputs: outputs.map((output, index) => ({ name: output.name, type: output.type, at: [x + width, socketY(index)] as Vec2 })),
    widgets,
    ...(actions.length > 0 ? { actions } : {}),
    ...(plots.length > 0 ? { plots } : {}),
  };
}

/**
 * The widget naming an input-folder image, for nodes that load one (Load Image and its
 * kind): an ENUM listed from the "inputs" folder on a node with an IMAGE output.
 */
export function imageInputOf(spec: NodeSpec): string | undefined {
  if (!spec.outputs.some((output) => output.type === "IMAGE")) return undefined;
  return spec.inputs.find((input) => input.kind === "widget" && input.type === "ENUM" && input.choices_from === "inputs")?.name;
}

/**
 * Sockets from the file: every input it listed, then every kept literal it did not list (so
 * a value, or a link a hand edit added, still has a row). No widgets: a placeholder cannot
 * run, so its values are shown, not edited.
 */
function placeholderLayout(placeholder: Placeholder, node: NodeRecord): NodeLayout {
  const [x, y] = node.pos;
  const listed = new Set(placeholder.inputs.map((input) => input.name));
  const rows = [
    ...placeholder.inputs,
    ...Object.keys(node.inputs).filter((name) => !listed.has(name)).map((name) => ({ name, label: name, type: literalType(node.inputs[name]) })),
  ];
  const width = node.collapsed ? COLLAPSED_WIDTH : (node.size?.[0] ?? DEFAULT_WIDTH);
  const socketY = (index: number): number => (node.collapsed ? y + TITLE_HEIGHT / 2 : y + TITLE_HEIGHT + SOCKET_ROW * index + SOCKET_ROW / 2);
  const count = Math.max(rows.length, placeholder.outputs.length, 1);
  const height = node.collapsed ? TITLE_HEIGHT : Math.max(TITLE_HEIGHT + count * SOCKET_ROW + 8, node.size?.[1] ?? 0);
  return {
    rect: [x, y, width, height],
    spec: undefined,
    inputs: rows.map((row, index) => ({ name: row.name, type: row.type, label: row.label, at: [x, socketY(index)] as Vec2 })),
    outputs: placeholder.outputs.map((output, index) => ({ name: output.name, type: output.type, label: output.label, at: [x + width, socketY(index)] as Vec2 })),
    widgets: [],
    placeholder,
    valueRows: new Set(Object.keys(node.inputs)),
  };
}

function literalType(value: unknown): string {
  if (typeof value === "boolean") return "BOOLEAN";
  if (typeof value === "number") return Number.isInteger(value) ? "INT" : "FLOAT";
  if (typeof value === "bigint") return "INT";
  return "STRING";
}

/**
 * Where a link meets a node that has no such socket: a node whose type the catalog lacks
 * (a third-party pack not installed) keeps its links in the file, and drawing them to the
 * middle of its left or right edge shows they are there. Undefined for a known type: a link
 * to a socket a known node lacks is a real problem, and validation names it.
 */
export function fallbackSlot(layout: NodeLayout, name: string, side: "input" | "output"): SocketSlot | undefined {
  if (layout.spec !== undefined) return undefined;
  const [x, y, width] = layout.rect;
  return { name, type: "*", at: [side === "input" ? x : x + width, y + TITLE_HEIGHT / 2] };
}

export function inputSlot(layout: NodeLayout, name: string): SocketSlot | undefined {
  return layout.inputs.find((slot) => slot.name === name);
}

export function outputSlot(layout: NodeLayout, name: string): SocketSlot | undefined {
  return layout.outputs.find((slot) => slot.name === name);
}

/** The nearest socket within SOCKET_HIT of `point`, on either side. */
export function socketAt(
  layout: NodeLayout,
  point: Vec2,
  radius = SOCKET_HIT,
): { readonly side: "input" | "output"; readonly slot: SocketSlot } | undefined {
  let best: { side: "input" | "output"; slot: SocketSlot } | undefined;
  let bestDistance = radius * radius;
  const consider = (side: "input" | "output", slot: SocketSlot): void => {
    const dx = slot.at[0] - point[0];
    const dy = slot.at[1] - point[1];
    const distance = dx * dx + dy * dy;
    if (distance <= bestDistance) {
      bestDistance = distance;
      best = { side, slot };
    }
  };
  layout.inputs.forEach((slot) => consider("input", slot));
  layout.outputs.forEach((slot) => consider("output", slot));
  return best;
}

/** A bezier link from output to input, as its four control points. */
export function linkCurve(from: Vec2, to: Vec2): readonly [Vec2, Vec2, Vec2, Vec2] {
  const reach = Math.max(40, Math.abs(to[0] - from[0]) / 2);
  return [from, [from[0] + reach, from[1]], [to[0] - reach, to[1]], to];
}

/** Distance from `point` to a link curve, sampled (good enough for clicking a link). */
export function distanceToCurve(curve: readonly [Vec2, Vec2, Vec2, Vec2], point: Vec2): number {
  let best = Infinity;
  for (let step = 0; step <= 20; step += 1) {
    const [x, y] = bezierPoint(curve, step / 20);
    best = Math.min(best, Math.hypot(x - point[0], y - point[1]));
  }
  return best;
}

export function bezierPoint(curve: readonly [Vec2, Vec2, Vec2, Vec2], t: number): Vec2 {
  const [p0, p1, p2, p3] = curve;
  const u = 1 - t;
  const a = u * u * u;
  const b = 3 * u * u * t;
  const c = 3 * u * t * t;
  const d = t * t * t;
  return [a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]];
}

export const REROUTE_RADIUS = 7;

export function rerouteRect(pos: Vec2): Rect {
  return [pos[0] - REROUTE_RADIUS, pos[1] - REROUTE_RADIUS, REROUTE_RADIUS * 2, REROUTE_RADIUS * 2];
}
