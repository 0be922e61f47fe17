/**
 * The canvas renderer. It reads the store and never writes it.
 *
 * Two stacked canvases: the static layer (grid, groups, links, nodes, run state) and the
 * interactive layer (selection box, link being dragged, socket highlights), so dragging a
 * link redraws a nearly empty layer instead of the whole graph. Both redraw only when marked
 * dirty, inside one requestAnimationFrame: an idle editor draws nothing, and any number of
 * changes within a frame cost one draw. Nodes are looked up in a spatial index kept in step
 * with store diffs, so a frame touches only what is visible. The counters in `stats` are what
 * the browser tests assert on (draws, nodes drawn), rather than timings.
 */

import type { Change, LinkRecord, NodeRecord, Rect, Store, Vec2 } from "../model";
import type { RunState } from "../app/run-state";
import { drawGroup, drawNode, drawReroute } from "./draw-node";
import { fallbackSlot, inputSlot, nodeLayout, outputSlot, type NodeLayout } from "./geometry";
import { preferences, traceLink } from "./preferences";
import { Minimap } from "./minimap";
import { SpatialIndex } from "./spatial-index";
import { THEME, socketColor } from "./theme";
import { IDENTITY, SIMPLIFY_BELOW, rectsIntersect, visibleWorldRect, type Viewport } from "./viewport";

export interface DraggedLink {
  /** The fixed end, in world units. */
  readonly anchor: Vec2;
  /** The end under the pointer, in world units. */
  readonly pointer: Vec2;
  readonly type: string | undefined;
  /** "output": dragged out of an output, looking for an input (and vice versa). */
  readonly from: "output" | "input";
  /** Sockets that would accept the link, `node:name`, highlighted while dragging. */
  readonly compatible: ReadonlySet<string>;
}

export interface Overlay {
  selectionBox?: Rect;
  link?: DraggedLink;
}

export interface RenderStats {
  /** Frames drawn on the static layer since start. */
  drawCount: number;
  interactiveDrawCount: number;
  minimapDrawCount: number;
  nodesDrawnLastFrame: number;
  linksDrawnLastFrame: number;
  totalNodes: number;
  /** Script time of the last static frame, ms (for the benchmark, not for assertions). */
  lastFrameMs: number;
}

/** How far below a node its messages and preview may reach, for culling. */
const BELOW_NODE_MARGIN = 420;

export class Renderer {
  readonly stats: RenderStats = {
    drawCount: 0,
    interactiveDrawCount: 0,
    minimapDrawCount: 0,
    nodesDrawnLastFrame: 0,
    linksDrawnLastFrame: 0,
    totalNodes: 0,
    lastFrameMs: 0,
  };
  readonly overlay: Overlay = {};
  readonly index = new SpatialIndex();
  /** Link bounding boxes, so a frame visits only links that can cross the screen. */
  private readonly linkIndex = new SpatialIndex();
  /** Node or reroute id -> ids of the links touching it, to re-box links when an end moves. */
  private readonly linksByEnd = new Map<string, Set<string>>();
  private readonly staticCanvas: HTMLCanvasElement;
  private readonly interactiveCanvas: HTMLCanvasElement;
  private readonly minimap: Minimap;
  private store: Store | undefined;
  private selection: ReadonlySet<string> = new Set();
  private run: RunState | undefined;
  private unsubscribe: (() => void) | undefined;
  private viewport: Viewport = IDENTITY;
  private size: Vec2 = [1, 1];
  private ratio = 1;
  private staticDirty = true;
  private interactiveDirty = true;
  private frameRequested = false;
  /** Listeners told after each frame in which the view changed (zoom readout). */
  onViewChange: ((view: Viewport) => void) | undefined;

  constructor(private readonly host: HTMLElement) {
    this.staticCanvas = layer("static");
    this.interactiveCanvas = layer("interactive");
    host.append(this.staticCanvas, this.interactiveCanvas);
    this.minimap = new Minimap(host, (world) => this.centerOn(world));
    new ResizeObserver(() => this.resize()).observe(host);
    this.resize();
  }

  get view(): Viewport {
    return this.viewport;
  }

  set view(view: Viewport) {
    this.viewport = view;
    this.onViewChange?.(view);
    this.markDirty();
  }

  get screenSize(): Vec2 {
    return this.size;
  }

  get element(): HTMLCanvasElement {
    return this.interactiveCanvas;
  }

  /** Shows another document (a tab switch); rebuilds the index once. */
  setScene(store: Store, selection: ReadonlySet<string>, run: RunState): void {
    this.unsubscribe?.();
    this.store = store;
    this.selection = selection;
    this.run = run;
    this.index.clear();
    this.linkIndex.clear();
    this.linksByEnd.clear();
    for (const node of store.list("node")) this.indexNode(node);
    for (const link of store.list("link")) this.indexLink(link);
    this.unsubscribe = store.listen((change) => this.onStoreChange(change));
    this.minimap.invalidate();
    this.markDirty();
  }

  setSelection(selection: ReadonlySet<string>): void {
    this.selection = selection;
    this.markDirty();
  }

  markDirty(): void {
    this.staticDirty = true;
    this.interactiveDirty = true;
    this.schedule();
  }

  markInteractiveDirty(): void {
    this.interactiveDirty = true;
    this.schedule();
  }

  layoutOf(node: NodeRecord): NodeLayout {
    if (this.store === undefined) throw new Error("the renderer has no scene yet");
    return nodeLayout(this.store.catalog, node);
  }

  centerOn(world: Vec2): void {
    const scale = this.viewport.scale;
    this.view = { scale, offset: [this.size[0] / 2 - world[0] * scale, this.size[1] / 2 - world[1] * scale] };
  }

  private onStoreChange(change: Change): void {
    const store = this.store;
    if (store === undefined) return;
    const { node: nodes, link: links, reroute: reroutes } = change.diff;
    for (const id of Object.keys(nodes.removed)) this.index.delete(id);
    for (const node of Object.values(nodes.added)) this.indexNode(node);
    for (const [, node] of Object.values(nodes.updated)) this.indexNode(node);
    for (const link of Object.values(links.removed)) this.unindexLink(link);
    for (const [before] of Object.values(links.updated)) this.unindexLink(before);
    for (const [, after] of Object.values(links.updated)) this.indexLink(after);
    for (const link of Object.values(links.added)) this.indexLink(link);
    // A moved or resized end changes the boxes of the links attached to it.
    const moved = [...Object.keys(nodes.updated), ...Object.keys(nodes.added), ...Object.keys(reroutes.updated), ...Object.keys(reroutes.added)];
    for (const id of moved) {
      for (const linkId of this.linksByEnd.get(id) ?? []) {
        const link = store.get("link", linkId);
        if (link !== undefined) this.indexLink(link);
      }
    }
    this.minimap.invalidate();
    this.markDirty();
  }

  private indexNode(node: NodeRecord): void {
    this.index.set(node.id, this.layoutOf(node).rect);
    this.stats.totalNodes = this.index.size;
  }

  private indexLink(link: LinkRecord): void {
    const box = this.linkBox(link);
    if (box === undefined) this.linkIndex.delete(link.id);
    else this.linkIndex.set(link.id, box);
    for (const end of [link.from.node, link.to.node]) {
      let set = this.linksByEnd.get(end);
      if (set === undefined) {
        set = new Set();
        this.linksByEnd.set(end, set);
      }
      set.add(link.id);
    }
  }

  private unindexLink(link: LinkRecord): void {
    this.linkIndex.delete(link.id);
    for (const end of [link.from.node, link.to.node]) {
      const set = this.linksByEnd.get(end);
      set?.delete(link.id);
      if (set?.size === 0) this.linksByEnd.delete(end);
    }
  }

  /** The box around a link's curve (control points included), or undefined while an end is missing. */
  private linkBox(link: LinkRecord): Rect | undefined {
    const from = this.endpoint(link.from.node, link.from.output, "output");
    const to = this.endpoint(link.to.node, link.to.input, "input");
    if (from === undefined || to === undefined) return undefined;
    const reach = Math.max(40, Math.abs(to.at[0] - from.at[0]) / 2);
    return [
      Math.min(from.at[0], to.at[0]) - reach,
      Math.min(from.at[1], to.at[1]) - 2,
      Math.abs(to.at[0] - from.at[0]) + 2 * reach,
      Math.abs(to.at[1] - from.at[1]) + 4,
    ];
  }

  private resize(): void {
    const rect = this.host.getBoundingClientRect();
    this.size = [Math.max(1, rect.width), Math.max(1, rect.height)];
    this.ratio = window.devicePixelRatio || 1;
    for (const canvas of [this.staticCanvas, this.interactiveCanvas]) {
      canvas.width = Math.round(this.size[0] * this.ratio);
      canvas.height = Math.round(this.size[1] * this.ratio);
      canvas.style.width = `${this.size[0]}px`;
      canvas.style.height = `${this.size[1]}px`;
    }
    this.markDirty();
  }

  private schedule(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => this.frame());
  }

  private frame(): void {
    this.frameRequested = false;
    if (this.staticDirty) {
      this.staticDirty = false;
      const started = performance.now();
      this.drawStatic();
      this.stats.lastFrameMs = performance.now() - started;
      this.stats.drawCount += 1;
      if (this.store !== undefined && this.minimap.draw(this.store, this.index, this.viewport, this.size)) {
        this.stats.minimapDrawCount += 1;
      }
    }
    if (this.interactiveDirty) {
      this.interactiveDirty = false;
      this.drawInteractive();
      this.stats.interactiveDrawCount += 1;
    }
  }

  private begin(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
    const ctx = canvas.getContext("2d");
    if (ctx === null) throw new Error("this browser gives no 2D canvas context");
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, this.size[0], this.size[1]);
    return ctx;
  }

  private drawStatic(): void {
    const ctx = this.begin(this.staticCanvas);
    ctx.fillStyle = THEME.background;
    ctx.fillRect(0, 0, this.size[0], this.size[1]);
    this.drawGrid(ctx);
    const store = this.store;
    const run = this.run;
    if (store === undefined || run === undefined) return;
    const view = this.viewport;
    const world = visibleWorldRect(view, this.size);
    const simplified = view.scale < SIMPLIFY_BELOW;
    ctx.setTransform(this.ratio * view.scale, 0, 0, this.ratio * view.scale, this.ratio * view.offset[0], this.ratio * view.offset[1]);
    for (const group of store.list("group")) {
      if (rectsIntersect(group.rect, world)) drawGroup(ctx, group, this.selection.has(group.id), simplified);
    }
    this.stats.linksDrawnLastFrame = this.drawLinks(ctx, world, simplified);
    for (const reroute of store.list("reroute")) {
      if (rectsIntersect([reroute.pos[0] - 10, reroute.pos[1] - 10, 20, 20], world)) drawReroute(ctx, reroute, this.selection.has(reroute.id));
    }
    const candidates = this.index.query([world[0], world[1] - BELOW_NODE_MARGIN, world[2], world[3] + BELOW_NODE_MARGIN]);
    const linked = this.linkedInputsOf(store, candidates);
    const selectedLast = candidates.sort((a, b) => Number(this.selection.has(a)) - Number(this.selection.has(b)));
    let drawn = 0;
    for (const id of selectedLast) {
      const node = store.get("node", id);
      if (node === undefined) continue;
      const layout = this.layoutOf(node);
      const preview = run.previews.get(id);
      const problems = run.problems.get(id);
      const state = run.nodes.get(id);
      const below = preview !== undefined || problems !== undefined || state?.status === "failed" ? BELOW_NODE_MARGIN : 0;
      const [x, y, width, height] = layout.rect;
      if (!rectsIntersect([x, y, width, height + below], world)) continue;
      drawNode(ctx, store, node, layout, {
        selected: this.selection.has(id),
        run: state,
        problems,
        preview,
        sigmas: run.sigmas.get(id),
        linkedInputs: linked.get(id) ?? EMPTY,
        simplified,
      });
      drawn += 1;
    }
    this.stats.nodesDrawnLastFrame = drawn;
  }

  /** Per node, which inputs are linked (their widgets show "linked"); from the end index, not a scan. */
  private linkedInputsOf(store: Store, nodeIds: readonly string[]): Map<string, Set<string>> {
    const linked = new Map<string, Set<string>>();
    for (const id of nodeIds) {
      for (const linkId of this.linksByEnd.get(id) ?? []) {
        const link = store.get("link", linkId);
        if (link === undefined || link.to.node !== id) continue;
        const set = linked.get(id) ?? new Set<string>();
        set.add(link.to.input);
        linked.set(id, set);
      }
    }
    return linked;
  }

  private drawGrid(ctx: CanvasRenderingContext2D): void {
    const { scale, offset } = this.viewport;
    let spacing = 32 * scale;
    while (spacing < 12) spacing *= 4;
    ctx.strokeStyle = THEME.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = offset[0] % spacing; x < this.size[0]; x += spacing) {
      ctx.moveTo(Math.round(x) + 0.5, 0);
      ctx.lineTo(Math.round(x) + 0.5, this.size[1]);
    }
    for (let y = offset[1] % spacing; y < this.size[1]; y += spacing) {
      ctx.moveTo(0, Math.round(y) + 0.5);
      ctx.lineTo(this.size[0], Math.round(y) + 0.5);
    }
    ctx.stroke();
  }

  /** The world position of a link end: a node's socket or a reroute's centre. */
  endpoint(nodeId: string, name: string, side: "input" | "output"): { at: Vec2; type: string | undefined } | undefined {
    const store = this.store;
    if (store === undefined) return undefined;
    const reroute = store.get("reroute", nodeId);
    if (reroute !== undefined) return { at: reroute.pos, type: reroute.type };
    const node = store.get("node", nodeId);
    if (node === undefined) return undefined;
    const layout = this.layoutOf(node);
    const slot = (side === "input" ? inputSlot(layout, name) : outputSlot(layout, name)) ?? fallbackSlot(layout, name, side);
    return slot === undefined ? undefined : { at: slot.at, type: slot.type };
  }

  private drawLinks(ctx: CanvasRenderingContext2D, world: Rect, simplified: boolean): number {
    const store = this.store;
    if (store === undefined) return 0;
    let drawn = 0;
    // Zoomed out, keep links at least a pixel wide on screen.
    ctx.lineWidth = simplified ? Math.max(2, 1.2 / this.viewport.scale) : 2.5;
    for (const id of this.linkIndex.query(world)) {
      const link = store.get("link", id);
      if (link === undefined) continue;
      const from = this.endpoint(link.from.node, link.from.output, "output");
      const to = this.endpoint(link.to.node, link.to.input, "input");
      if (from === undefined || to === undefined) continue;
      // An untyped end ("*": an unknown node's edge, a placeholder socket) takes the other's colour.
      ctx.strokeStyle = socketColor(from.type === undefined || from.type === "*" ? to.type : from.type);
      ctx.beginPath();
      // Zoomed out every link is a straight line; otherwise the chosen style (preferences.ts).
      traceLink(ctx, from.at, to.at, simplified ? "straight" : preferences.linkStyle);
      ctx.stroke();
      drawn += 1;
    }
    return drawn;
  }

  private drawInteractive(): void {
    const ctx = this.begin(this.interactiveCanvas);
    const view = this.viewport;
    ctx.setTransform(this.ratio * view.scale, 0, 0, this.ratio * view.scale, this.ratio * view.offset[0], this.ratio * view.offset[1]);
    const box = this.overlay.selectionBox;
    if (box !== undefined) {
      ctx.fillStyle = "rgba(79, 195, 247, 0.12)";
      ctx.strokeStyle = THEME.selected;
      ctx.lineWidth = 1 / view.scale;
      ctx.fillRect(...box);
      ctx.strokeRect(...box);
    }
    const link = this.overlay.link;
    if (link !== undefined) {
      this.drawCompatible(ctx, link);
      const [from, to] = link.from === "output" ? [link.anchor, link.pointer] : [link.pointer, link.anchor];
      ctx.strokeStyle = socketColor(link.type);
      ctx.lineWidth = 2.5;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      traceLink(ctx, from, to);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  /** Rings around every visible socket the dragged link may plug into. */
  private drawCompatible(ctx: CanvasRenderingContext2D, link: DraggedLink): void {
    const store = this.store;
    if (store === undefined) return;
    const world = visibleWorldRect(this.viewport, this.size);
    ctx.lineWidth = 3;
    for (const id of this.index.query(world)) {
      const node = store.get("node", id);
      if (node === undefined) continue;
      const layout = this.layoutOf(node);
      for (const slot of link.from === "output" ? layout.inputs : layout.outputs) {
        if (!link.compatible.has(`${id}:${slot.name}`)) continue;
        ctx.strokeStyle = socketColor(slot.type);
        ctx.beginPath();
        ctx.arc(slot.at[0], slot.at[1], 9, 0, Math.PI * 2);
        ctx.stroke();
      }
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function layer(name: string): HTMLCanvasElement {
  const canvas = document.createElement("canvas");
  canvas.className = `layer layer-${name}`;
  canvas.dataset["layer"] = name;
  return canvas;
}
