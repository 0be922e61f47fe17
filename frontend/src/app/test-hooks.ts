/**
 * `window.__latentloom`: read-only counters and helpers for the browser tests and the
 * benchmark. Tests assert on counts (draws, nodes drawn, previews), never on timings, and
 * find sockets and widgets through these helpers instead of guessing pixels.
 */

import { fromWorkflow, type Vec2 } from "../model";
import type { Viewport } from "../canvas/viewport";
import type { App } from "./app";
import { RunState } from "./run-state";

export interface TestHooks {
  readonly app: App;
  readonly stats: App["renderer"]["stats"];
  previewsReceived(): number;
  runLog(): string[];
  nodeIds(): string[];
  workflow(): unknown;
  socketPosition(node: string, name: string, side: "input" | "output"): Vec2 | undefined;
  widgetPosition(node: string, name: string): Vec2 | undefined;
  nodeTitlePosition(node: string): Vec2 | undefined;
  /** The middle of a node's button ("upload", "edit-mask"), client coordinates. */
  actionPosition(node: string, action: string): Vec2 | undefined;
  /** A SIGMAS output's plot box on the page, client coordinates. */
  plotRect(node: string, output: string): [x: number, y: number, width: number, height: number] | undefined;
  /** The sigmas a node's last run reported, by output. */
  sigmas(node: string): Record<string, number[]> | undefined;
  /** The open mask painter: its image size and how many mask pixels are painted (> 0). */
  maskPainter(): { width: number; height: number; painted: number } | undefined;
  /** A node's box on the page (client coordinates, including its title bar). */
  nodeRect(node: string): [x: number, y: number, width: number, height: number] | undefined;
  /** The static layer's colour at a page point, [r, g, b, a]: what was actually drawn there. */
  pixelAt(point: Vec2): number[];
  runState(node: string): unknown;
  problems(node: string): unknown;
  hasPreview(node: string): boolean;
  pendingWrites(): number;
  connected(): boolean;
  /**
   * Closes the editor's live websocket as a network drop would, so its own reconnect (backoff,
   * resume, re-watch with revisions) runs; pair it with offline emulation to keep it away.
   */
  dropConnection(): void;
  view(): Viewport;
  setView(view: Viewport): void;
  tabName(): string | undefined;
  /** Resolves after two animation frames: any pending draw has happened. */
  frames(count?: number): Promise<void>;
  /** Sets a synthetic preview on a node of the active tab (the "one redraw per preview" check). */
  injectPreview(node: string): Promise<void>;
  openDocument(document: unknown, name: string): Promise<void>;
  /** Parse + validate + first frame of a workflow text, ms; the tab is closed again after. */
  benchLoad(text: string): Promise<{ parseMs: number; loadMs: number; firstFrameMs: number; totalMs: number; wallMs: number }>;
  closeActive(): void;
}

declare global {
  interface Window {
    __latentloom?: TestHooks;
  }
}

function frames(count = 2): Promise<void> {
  return new Promise((resolve) => {
    const step = (left: number): void => {
      if (left === 0) resolve();
      else requestAnimationFrame(() => step(left - 1));
    };
    step(count);
  });
}

export function installTestHooks(app: App): void {
  const active = () => app.workspace.active;
  window.__latentloom = {
    app,
    stats: app.renderer.stats,
    previewsReceived: () => app.runner.previewsReceived,
    runLog: () => [...app.runner.log],
    nodeIds: () => [...(active()?.store.list("node") ?? [])].map((node) => node.id),
    workflow: () => app.workflow(),
    socketPosition: (node, name, side) => app.geometry.socketPosition(node, name, side),
    widgetPosition: (node, name) => app.geometry.widgetPosition(node, name),
    nodeTitlePosition: (node) => app.geometry.nodeTitlePosition(node),
    actionPosition: (node, action) => app.geometry.actionPosition(node, action),
    plotRect: (node, output) => app.geometry.plotRect(node, output),
    sigmas: (node) => {
      const series = active()?.run.sigmas.get(node);
      return series === undefined ? undefined : Object.fromEntries([...series].map(([name, values]) => [name, [...values]]));
    },
    maskPainter: () => {
      const painter = app.imageActions.painter;
      if (painter === undefined || !painter.element.isConnected) return undefined;
      const mask = painter.mask;
      return { width: mask.width, height: mask.height, painted: mask.data.reduce((count, value) => count + (value > 0 ? 1 : 0), 0) };
    },
    nodeRect: (node) => app.geometry.nodeRect(node),
    pixelAt: ([x, y]) => {
      const canvas = document.querySelector<HTMLCanvasElement>("canvas.layer-static");
      const context = canvas?.getContext("2d");
      if (canvas === null || canvas === undefined || context === null || context === undefined) return [];
      const box = canvas.getBoundingClientRect();
      const ratio = canvas.width / box.width;
      return [...context.getImageData(Math.round((x - box.left) * ratio), Math.round((y - box.top) * ratio), 1, 1).data];
    },
    runState: (node) => active()?.run.nodes.get(node),
    problems: (node) => active()?.run.problems.get(node),
    hasPreview: (node) => active()?.run.previews.has(node) ?? false,
    pendingWrites: () => app.workspace.unsavedEdits,
    connected: () => app.connected,
    dropConnection: () => {
      // The socket is private to App and EventSocket; tests reach it here and nowhere else.
      const socket = (app as unknown as { socket?: { socket?: unknown } }).socket?.socket;
      if (!(socket instanceof WebSocket)) throw new Error("dropConnection: App.socket.socket is no longer the WebSocket; update test-hooks.ts");
      socket.close(4000, "dropped by a test");
    },
    view: () => app.renderer.view,
    setView: (view) => {
      app.renderer.view = view;
    },
    tabName: () => active()?.name,
    frames,
    injectPreview: async (node) => {
      const canvas = new OffscreenCanvas(64, 64);
      const context = canvas.getContext("2d");
      if (context !== null) {
        context.fillStyle = "#c0ffee";
        context.fillRect(0, 0, 64, 64);
      }
      const image = await createImageBitmap(canvas);
      active()?.run.setPreview(node, image);
    },
    openDocument: async (document, name) => {
      await app.workspace.create(document, name);
    },
    benchLoad: async (text) => {
      const started = performance.now();
      const document: unknown = JSON.parse(text);
      const parsed = performance.now();
      // fromWorkflow validates the whole document (format, reroutes, groups) before building.
      const store = fromWorkflow(document, app.catalog);
      const loaded = performance.now();
      const run = new RunState(() => undefined);
      app.renderer.setScene(store, new Set(), run);
      const before = app.renderer.stats.drawCount;
      while (app.renderer.stats.drawCount === before) await frames(1);
      const drawn = performance.now();
      const tab = active();
      if (tab !== undefined) app.renderer.setScene(tab.store, tab.selection, tab.run);
      run.dispose();
      // The first frame's own script time; the wait for the next animation frame is not work.
      const firstFrameMs = app.renderer.stats.lastFrameMs;
      return {
        parseMs: parsed - started,
        loadMs: loaded - parsed,
        firstFrameMs,
        totalMs: loaded - started + firstFrameMs,
        wallMs: drawn - started,
      };
    },
    closeActive: () => {
      const tab = active();
      if (tab !== undefined) app.workspace.close(tab);
    },
  };
}
