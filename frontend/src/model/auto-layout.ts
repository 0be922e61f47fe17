/**
 * Layered ("Sugiyama") layout, left to right: the Arrange command and the example files.
 *
 * 1. Layers: longest path from the sources; a pure source (a loader, Empty Latent) then moves
 *    right to sit just before its first consumer, so short links stay short.
 * 2. Links that skip layers get a dummy "lane" in every layer they pass, so the lane takes a
 *    place in that column's order like a thin node.
 * 3. Order within a column: barycenter sweeps (down, then up), keeping the order with the
 *    fewest link crossings.
 * 4. Coordinates: columns left-aligned, each after the widest node of the previous one; in a
 *    column each node moves to where its inputs' sockets line up with the outputs feeding
 *    them, pushed down only as far as needed to clear the one above.
 * 5. Repair: a link is drawn as a curve (the same control points as the renderer's
 *    `linkCurve`), which can still cut a node it passes; such a node moves out of its way,
 *    up or down as the column order says, pushing its neighbours, until no link cuts a node.
 * 6. Variants: lanes above the column's nodes or in crossing order, sources pulled right or
 *    not, layers as early or as late as possible; the first variant with no cut wins, else
 *    the one with the fewest (graphs over 200 nodes try one, with a bounded repair).
 * Unconnected parts of the graph are laid out one under the other.
 *
 * Pure: sizes and socket offsets come in, top-left positions go out.
 */

import type { Vec2 } from "./records";

export interface LayoutItem {
  readonly id: string;
  readonly size: Vec2;
}

/** A link from an output socket of `from` to an input socket of `to`, offsets from their top-left. */
export interface LayoutEdge {
  readonly from: string;
  readonly to: string;
  readonly fromAt: Vec2;
  readonly toAt: Vec2;
}

export interface LayoutGraph {
  readonly items: readonly LayoutItem[];
  readonly edges: readonly LayoutEdge[];
}

export interface LayoutOptions {
  readonly origin?: Vec2;
  /** Horizontal room between columns, where the links run. */
  readonly gapX?: number;
  /** Vertical room between nodes of a column. */
  readonly gapY?: number;
}

const LANE = 20;
const CLEARANCE = 14;
const SWEEPS = 8;
const REPAIR_PASSES = 60;
/** Repair passes for graphs beyond TRY_VARIANTS_UP_TO nodes: a bound on Arrange's time there. */
const LARGE_REPAIR_PASSES = 4;

interface Slot {
  readonly id: string;
  readonly real: boolean;
  readonly height: number;
  readonly width: number;
  layer: number;
  y: number;
}

/** A link between adjacent layers: a real link, or one leg of a lane. */
interface Segment {
  readonly from: Slot;
  readonly to: Slot;
  readonly fromY: number;
  readonly toY: number;
}

/**
 * Which variant of the layout to try: lanes above a column's nodes (links then pass over
 * them) or where the crossing count puts them; pure sources next to their first consumer
 * or in the first column.
 */
interface Variant {
  readonly lanesFirst: boolean;
  /** "pull": sources next to their first consumer; "early": longest path from the sources; "late": as far right as the sinks allow. */
  readonly layers: "pull" | "early" | "late";
}

const VARIANTS: readonly Variant[] = [
  { lanesFirst: true, layers: "pull" },
  { lanesFirst: false, layers: "pull" },
  { lanesFirst: true, layers: "late" },
  { lanesFirst: false, layers: "late" },
  { lanesFirst: true, layers: "early" },
  { lanesFirst: false, layers: "early" },
];
/** Beyond this many nodes only the first variant is tried, to keep Arrange quick. */
const TRY_VARIANTS_UP_TO = 200;

export function layeredLayout(graph: LayoutGraph, options: LayoutOptions = {}): Map<string, Vec2> {
  const parts = components(graph);
  if (parts.length <= 1) return layoutComponent(graph, options);
  // Unconnected parts are laid out one under the other, each on its own: their columns would
  // otherwise interleave and every link would cross the others' nodes.
  const origin = options.origin ?? [40, 60];
  const gapY = options.gapY ?? 40;
  const positions = new Map<string, Vec2>();
  let top = origin[1];
  const sizes = new Map(graph.items.map((item) => [item.id, item.size]));
  for (const part of parts) {
    const placed = layoutComponent(part, { ...options, origin: [origin[0], top] });
    let bottom = top;
    for (const [id, pos] of placed) {
      positions.set(id, pos);
      bottom = Math.max(bottom, pos[1] + (sizes.get(id)?.[1] ?? 0));
    }
    top = bottom + gapY * 2;
  }
  return positions;
}

/** The graph's connected parts, in the order their first item comes. */
function components(graph: LayoutGraph): LayoutGraph[] {
  const parent = new Map(graph.items.map((item) => [item.id, item.id]));
  const find = (id: string): string => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root) ?? root;
    parent.set(id, root);
    return root;
  };
  for (const edge of graph.edges) {
    if (parent.has(edge.from) && parent.has(edge.to)) parent.set(find(edge.from), find(edge.to));
  }
  const parts = new Map<string, { items: LayoutItem[]; edges: LayoutEdge[] }>();
  for (const item of graph.items) {
    const root = find(item.id);
    const part = parts.get(root) ?? { items: [], edges: [] };
    part.items.push(item);
    parts.set(root, part);
  }
  for (const edge of graph.edges) parts.get(find(edge.from))?.edges.push(edge);
  return [...parts.values()];
}

function layoutComponent(graph: LayoutGraph, options: LayoutOptions): Map<string, Vec2> {
  let best: { positions: Map<string, Vec2>; faults: number } | undefined;
  const variants = graph.items.length > TRY_VARIANTS_UP_TO ? VARIANTS.slice(0, 1) : VARIANTS;
  // No variant clears every link in every graph; the first that does wins, else the fewest faults.
  for (const variant of variants) {
    const positions = layoutOnce(graph, options, variant);
    const faults = countFaults(graph, positions);
    if (best === undefined || faults < best.faults) best = { positions, faults };
    if (faults === 0) break;
  }
  return best?.positions ?? new Map();
}

function layoutOnce(graph: LayoutGraph, options: LayoutOptions, variant: Variant): Map<string, Vec2> {
  const origin = options.origin ?? [40, 60];
  const gapX = options.gapX ?? 80;
  const gapY = options.gapY ?? 40;
  const slots = new Map<string, Slot>();
  for (const item of graph.items) slots.set(item.id, { id: item.id, real: true, width: item.size[0], height: item.size[1], layer: 0, y: 0 });
  const edges = graph.edges.filter((edge) => slots.has(edge.from) && slots.has(edge.to) && edge.from !== edge.to);
  const forward = assignLayers([...slots.values()], edges, slots, variant.layers);
  const { columns, segments } = buildColumns(slots, forward);
  orderColumns(columns, segments, variant.lanesFirst);
  placeColumns(columns, segments, gapY);
  const xs = columnXs(columns, origin[0], gapX);
  const positions = new Map<string, Vec2>();
  repair(columns, forward, slots, xs, gapY, graph.items.length > TRY_VARIANTS_UP_TO ? LARGE_REPAIR_PASSES : REPAIR_PASSES);
  const top = Math.min(...[...slots.values()].filter((slot) => slot.real).map((slot) => slot.y));
  for (const slot of slots.values()) {
    if (slot.real) positions.set(slot.id, [Math.round(xs[slot.layer] ?? 0), Math.round(slot.y - top + origin[1])]);
  }
  return positions;
}

/** Links that cut a node they do not touch, counted as the layout tests count them. */
function countFaults(graph: LayoutGraph, positions: ReadonlyMap<string, Vec2>): number {
  const boxes = graph.items.map((item) => ({ item, pos: positions.get(item.id) as Vec2 }));
  const byId = new Map(boxes.map((entry) => [entry.item.id, entry]));
  let faults = 0;
  for (const edge of graph.edges) {
    const from = byId.get(edge.from);
    const to = byId.get(edge.to);
    if (from === undefined || to === undefined || from === to) continue;
    const curve = sampleCurve([from.pos[0] + edge.fromAt[0], from.pos[1] + edge.fromAt[1]], [to.pos[0] + edge.toAt[0], to.pos[1] + edge.toAt[1]]);
    const left = Math.min(from.pos[0], to.pos[0]);
    const right = Math.max(from.pos[0] + from.item.size[0], to.pos[0]);
    const [top, bottom] = yRange(curve);
    for (const other of boxes) {
      if (other === from || other === to || other.pos[0] > right || other.pos[0] + other.item.size[0] < left) continue;
      if (other.pos[1] > bottom || other.pos[1] + other.item.size[1] < top) continue;
      if (crossingSpan(curve, [other.pos[0], other.pos[1], other.item.size[0], other.item.size[1]]) !== undefined) faults += 1;
    }
  }
  return faults;
}

/** Longest-path layers; links that would point backwards (a cycle) are left out of the layout. */
function assignLayers(nodes: readonly Slot[], edges: readonly LayoutEdge[], slots: ReadonlyMap<string, Slot>, mode: Variant["layers"]): LayoutEdge[] {
  const incoming = new Map<string, number>(nodes.map((node) => [node.id, 0]));
  const outgoing = new Map<string, LayoutEdge[]>(nodes.map((node) => [node.id, []]));
  for (const edge of edges) {
    incoming.set(edge.to, (incoming.get(edge.to) ?? 0) + 1);
    outgoing.get(edge.from)?.push(edge);
  }
  const order: string[] = [];
  const ready = nodes.filter((node) => incoming.get(node.id) === 0).map((node) => node.id);
  const seen = new Set<string>();
  // Kahn's algorithm; a node left in a cycle is released in document order.
  while (order.length < nodes.length) {
    const next = ready.shift() ?? nodes.find((node) => !seen.has(node.id))?.id;
    if (next === undefined || seen.has(next)) continue;
    seen.add(next);
    order.push(next);
    for (const edge of outgoing.get(next) ?? []) {
      const left = (incoming.get(edge.to) ?? 0) - 1;
      incoming.set(edge.to, left);
      if (left === 0 && !seen.has(edge.to)) ready.push(edge.to);
    }
  }
  const rank = new Map(order.map((id, index) => [id, index]));
  const forward = edges.filter((edge) => (rank.get(edge.from) ?? 0) < (rank.get(edge.to) ?? 0));
  const layerOf = (id: string): Slot => slots.get(id) as Slot;
  for (const id of order) {
    for (const edge of forward) if (edge.from === id) layerOf(edge.to).layer = Math.max(layerOf(edge.to).layer, layerOf(id).layer + 1);
  }
  const hasInput = new Set(forward.map((edge) => edge.to));
  if (mode === "early") return forward;
  if (mode === "late") {
    const last = Math.max(0, ...nodes.map((node) => node.layer));
    const height = new Map<string, number>();
    for (const id of [...order].reverse()) {
      const below = forward.filter((edge) => edge.from === id).map((edge) => (height.get(edge.to) ?? 0) + 1);
      height.set(id, Math.max(0, ...below));
    }
    for (const node of nodes) node.layer = last - (height.get(node.id) ?? 0);
    return forward;
  }
  for (const id of [...order].reverse()) {
    if (hasInput.has(id)) continue;
    const consumers = forward.filter((edge) => edge.from === id).map((edge) => layerOf(edge.to).layer);
    if (consumers.length > 0) layerOf(id).layer = Math.min(...consumers) - 1;
  }
  return forward;
}

function buildColumns(slots: Map<string, Slot>, edges: readonly LayoutEdge[]): { columns: Slot[][]; segments: Segment[] } {
  const columns: Slot[][] = [];
  const add = (slot: Slot): void => {
    while (columns.length <= slot.layer) columns.push([]);
    columns[slot.layer]?.push(slot);
  };
  for (const slot of slots.values()) add(slot);
  const segments: Segment[] = [];
  edges.forEach((edge, index) => {
    const from = slots.get(edge.from) as Slot;
    const to = slots.get(edge.to) as Slot;
    let previous = from;
    let previousY = edge.fromAt[1];
    for (let layer = from.layer + 1; layer < to.layer; layer += 1) {
      const lane: Slot = { id: `lane:${index}:${layer}`, real: false, width: 0, height: LANE, layer, y: 0 };
      add(lane);
      segments.push({ from: previous, to: lane, fromY: previousY, toY: LANE / 2 });
      previous = lane;
      previousY = LANE / 2;
    }
    segments.push({ from: previous, to, fromY: previousY, toY: edge.toAt[1] });
  });
  return { columns, segments };
}

/** Barycenter sweeps; the order with the fewest crossings wins. */
function orderColumns(columns: Slot[][], segments: readonly Segment[], lanesFirst: boolean): void {
  const into = groupBy(segments, (segment) => segment.to);
  const outOf = groupBy(segments, (segment) => segment.from);
  const index = new Map<Slot, number>();
  const reindex = (): void => columns.forEach((column) => column.forEach((slot, position) => index.set(slot, position)));
  reindex();
  // A socket's place in its node breaks ties, so two links from one node do not cross.
  const key = (slot: Slot, neighbours: readonly Segment[] | undefined, down: boolean): number => {
    if (neighbours === undefined || neighbours.length === 0) return index.get(slot) ?? 0;
    let sum = 0;
    for (const segment of neighbours) {
      const other = down ? segment.from : segment.to;
      const offset = down ? segment.fromY : segment.toY;
      sum += (index.get(other) ?? 0) + (0.8 * offset) / Math.max(other.height, 1);
    }
    return sum / neighbours.length;
  };
  let best = columns.map((column) => [...column]);
  let bestCrossings = countCrossings(columns, segments, index);
  for (let sweep = 0; sweep < SWEEPS; sweep += 1) {
    const down = sweep % 2 === 0;
    const layers = columns.map((_, layer) => layer);
    if (!down) layers.reverse();
    for (const layer of layers) {
      const column = columns[layer] ?? [];
      const keys = new Map(column.map((slot) => [slot, key(slot, down ? into.get(slot) : outOf.get(slot), down)]));
      column.sort((a, b) => (keys.get(a) ?? 0) - (keys.get(b) ?? 0));
      column.forEach((slot, position) => index.set(slot, position));
    }
    const crossings = countCrossings(columns, segments, index);
    if (crossings < bestCrossings) {
      bestCrossings = crossings;
      best = columns.map((column) => [...column]);
    }
  }
  // Lanes above a column's nodes: a node then only moves down to clear a passing link.
  const arranged = lanesFirst ? best.map((column) => [...column.filter((slot) => !slot.real), ...column.filter((slot) => slot.real)]) : best;
  arranged.forEach((column, layer) => columns.splice(layer, 1, column));
}

function countCrossings(columns: readonly Slot[][], segments: readonly Segment[], index: ReadonlyMap<Slot, number>): number {
  const byLayer = groupBy(segments, (segment) => segment.from.layer);
  let crossings = 0;
  for (let layer = 0; layer < columns.length; layer += 1) {
    const list = (byLayer.get(layer) ?? []).map((segment) => [(index.get(segment.from) ?? 0) + segment.fromY / 1e4, (index.get(segment.to) ?? 0) + segment.toY / 1e4] as const);
    for (let a = 0; a < list.length; a += 1) {
      for (let b = a + 1; b < list.length; b += 1) {
        const [fa, ta] = list[a] as readonly [number, number];
        const [fb, tb] = list[b] as readonly [number, number];
        if ((fa - fb) * (ta - tb) < 0) crossings += 1;
      }
    }
  }
  return crossings;
}

/** Left to right each slot lines up with what feeds it; right to left sources line up with their consumers. */
function placeColumns(columns: readonly Slot[][], segments: readonly Segment[], gapY: number): void {
  const into = groupBy(segments, (segment) => segment.to);
  const outOf = groupBy(segments, (segment) => segment.from);
  const wanted = new Map<Slot, number>();
  const pack = (column: readonly Slot[]): void => {
    let bottom = -Infinity;
    let previous: Slot | undefined;
    for (const slot of column) {
      const gap = previous === undefined ? 0 : spacing(previous, slot, gapY);
      slot.y = Math.max(wanted.get(slot) ?? 0, bottom + gap);
      bottom = slot.y + slot.height;
      previous = slot;
    }
  };
  const fromLeft = (): void => {
    for (const column of columns) {
      for (const slot of column) {
        // A node a long link reaches lines up with that link (its lane), so the link runs flat
        // over the columns it passes; otherwise with the mean of what feeds it.
        const feeds = into.get(slot);
        const lanes = feeds?.filter((segment) => !segment.from.real);
        const chosen = lanes !== undefined && lanes.length > 0 ? lanes.slice(0, 1) : feeds;
        if (chosen !== undefined) wanted.set(slot, mean(chosen.map((segment) => segment.from.y + segment.fromY - segment.toY)));
      }
      pack(column);
    }
  };
  fromLeft();
  for (const column of [...columns].reverse()) {
    for (const slot of column) {
      const consumers = outOf.get(slot);
      if (into.get(slot) === undefined && consumers !== undefined) {
        wanted.set(slot, mean(consumers.map((segment) => segment.to.y + segment.toY - segment.fromY)));
      }
    }
  }
  fromLeft();
}

function columnXs(columns: readonly Slot[][], left: number, gapX: number): number[] {
  const xs: number[] = [];
  let x = left;
  for (const column of columns) {
    xs.push(x);
    x += Math.max(0, ...column.map((slot) => slot.width)) + gapX;
  }
  return xs;
}

/**
 * Moves nodes a link curve cuts out of its way, keeping the column order: a node above the
 * link's place in a column (its lane, or its source or target) goes up above the curve, a
 * node below goes down, pushing its neighbours along. Repeats until nothing moves.
 */
function repair(columns: readonly Slot[][], edges: readonly LayoutEdge[], slots: ReadonlyMap<string, Slot>, xs: readonly number[], gapY: number, passes: number): void {
  const place = new Map<Slot, number>();
  columns.forEach((column) => column.forEach((slot, position) => place.set(slot, position)));
  const lanes = new Map<string, Slot>();
  for (const column of columns) for (const slot of column) if (!slot.real) lanes.set(slot.id, slot);
  for (let pass = 0; pass < passes; pass += 1) {
    let moved = false;
    edges.forEach((edge, index) => {
      const from = slots.get(edge.from) as Slot;
      const to = slots.get(edge.to) as Slot;
      const curve = sampleCurve(
        [(xs[from.layer] ?? 0) + edge.fromAt[0], from.y + edge.fromAt[1]],
        [(xs[to.layer] ?? 0) + edge.toAt[0], to.y + edge.toAt[1]],
      );
      const [top, bottom] = yRange(curve);
      for (let layer = from.layer; layer <= to.layer; layer += 1) {
        const column = columns[layer] ?? [];
        const anchor = layer === from.layer ? from : layer === to.layer ? to : lanes.get(`lane:${index}:${layer}`);
        const at = anchor === undefined ? -1 : (place.get(anchor) ?? -1);
        for (let position = 0; position < column.length; position += 1) {
          const slot = column[position] as Slot;
          if (!slot.real || slot === from || slot === to) continue;
          // Most of a tall column is nowhere near the curve: a cheap test first.
          if (slot.y - CLEARANCE > bottom || slot.y + slot.height + CLEARANCE < top) continue;
          const rect = [(xs[layer] ?? 0) - CLEARANCE / 2, slot.y - CLEARANCE / 2, slot.width + CLEARANCE, slot.height + CLEARANCE] as const;
          const span = crossingSpan(curve, rect);
          if (span === undefined) continue;
          if (position < at) moveUp(column, position, span[0] - CLEARANCE - slot.height, gapY);
          else moveDown(column, position, span[1] + CLEARANCE, gapY);
          moved = true;
        }
      }
    });
    if (!moved) return;
  }
}

function moveUp(column: readonly Slot[], position: number, y: number, gapY: number): void {
  (column[position] as Slot).y = y;
  for (let above = position - 1; above >= 0; above -= 1) {
    const slot = column[above] as Slot;
    const under = column[above + 1] as Slot;
    slot.y = Math.min(slot.y, under.y - spacing(slot, under, gapY) - slot.height);
  }
}

function moveDown(column: readonly Slot[], position: number, y: number, gapY: number): void {
  (column[position] as Slot).y = y;
  for (let below = position + 1; below < column.length; below += 1) {
    const slot = column[below] as Slot;
    const over = column[below - 1] as Slot;
    slot.y = Math.max(slot.y, over.y + over.height + spacing(over, slot, gapY));
  }
}

function spacing(a: Slot, b: Slot, gapY: number): number {
  return a.real && b.real ? gapY : LANE / 2;
}

/** The renderer's link shape (canvas/geometry.ts `linkCurve`), sampled into a polyline. */
export function sampleCurve(from: Vec2, to: Vec2, steps = 32): Vec2[] {
  const reach = Math.max(40, Math.abs(to[0] - from[0]) / 2);
  const p1: Vec2 = [from[0] + reach, from[1]];
  const p2: Vec2 = [to[0] - reach, to[1]];
  const points: Vec2[] = [];
  for (let step = 0; step <= steps; step += 1) {
    const t = step / steps;
    const u = 1 - t;
    const a = u * u * u;
    const b = 3 * u * u * t;
    const c = 3 * u * t * t;
    const d = t * t * t;
    points.push([a * from[0] + b * p1[0] + c * p2[0] + d * to[0], a * from[1] + b * p1[1] + c * p2[1] + d * to[1]]);
  }
  return points;
}

/**
 * If the polyline enters `rect`, the lowest y it reaches over the rect's width (where the
 * rect must go to clear it); undefined when it stays outside.
 */
export function lowestCrossing(points: readonly Vec2[], rect: readonly [number, number, number, number]): number | undefined {
  return crossingSpan(points, rect)?.[1];
}

/** If the polyline enters `rect`, the y range it covers over the rect's width; else undefined. */
export function crossingSpan(points: readonly Vec2[], rect: readonly [number, number, number, number]): [number, number] | undefined {
  const [x, y, width, height] = rect;
  let crosses = false;
  let lowest = -Infinity;
  let highest = Infinity;
  for (let index = 1; index < points.length; index += 1) {
    const clipped = clipSegment(points[index - 1] as Vec2, points[index] as Vec2, x, x + width);
    if (clipped === undefined) continue;
    const [a, b] = clipped;
    lowest = Math.max(lowest, a[1], b[1]);
    highest = Math.min(highest, a[1], b[1]);
    if (Math.max(a[1], b[1]) >= y && Math.min(a[1], b[1]) <= y + height) crosses = true;
  }
  return crosses ? [highest, lowest] : undefined;
}

/** The part of segment a–b between x = left and x = right. */
function clipSegment(a: Vec2, b: Vec2, left: number, right: number): [Vec2, Vec2] | undefined {
  const [lo, hi] = a[0] <= b[0] ? [a, b] : [b, a];
  if (hi[0] < left || lo[0] > right) return undefined;
  const at = (x: number): Vec2 => (hi[0] === lo[0] ? [x, lo[1]] : [x, lo[1] + ((x - lo[0]) / (hi[0] - lo[0])) * (hi[1] - lo[1])]);
  return [lo[0] < left ? at(left) : lo, hi[0] > right ? at(right) : hi];
}

function yRange(points: readonly Vec2[]): [number, number] {
  let top = Infinity;
  let bottom = -Infinity;
  for (const [, y] of points) {
    top = Math.min(top, y);
    bottom = Math.max(bottom, y);
  }
  return [top, bottom];
}

function groupBy<T, K>(list: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of list) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
