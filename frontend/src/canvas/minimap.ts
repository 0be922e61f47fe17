/**
 * The minimap: every node as a dot-sized box, plus the visible area. The node picture is
 * cached in an offscreen canvas per store change (invalidate()), so panning only blits it
 * and draws one rectangle. Clicking or dragging on it centres the view there.
 */

import type { Rect, Store, Vec2 } from "../model";
import type { SpatialIndex } from "./spatial-index";
import { THEME } from "./theme";
import { unionRects, visibleWorldRect, type Viewport } from "./viewport";

const WIDTH = 200;
const HEIGHT = 140;

export class Minimap {
  private readonly canvas: HTMLCanvasElement;
  private readonly cache = document.createElement("canvas");
  private cacheValid = false;
  private bounds: Rect = [0, 0, 1, 1];
  private scale = 1;

  constructor(host: HTMLElement, onPick: (world: Vec2) => void) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "minimap";
    this.canvas.width = WIDTH;
    this.canvas.height = HEIGHT;
    this.cache.width = WIDTH;
    this.cache.height = HEIGHT;
    host.append(this.canvas);
    const pick = (event: PointerEvent): void => {
      const box = this.canvas.getBoundingClientRect();
      const x = (event.clientX - box.left - this.padX()) / this.scale + this.bounds[0];
      const y = (event.clientY - box.top - this.padY()) / this.scale + this.bounds[1];
      onPick([x, y]);
    };
    this.canvas.addEventListener("pointerdown", (event) => {
      event.stopPropagation();
      this.canvas.setPointerCapture(event.pointerId);
      pick(event);
    });
    this.canvas.addEventListener("pointermove", (event) => {
      if (this.canvas.hasPointerCapture(event.pointerId)) pick(event);
    });
  }

  invalidate(): void {
    this.cacheValid = false;
  }

  /** Redraws; returns true (for the draw counter). */
  draw(store: Store, index: SpatialIndex, view: Viewport, screen: Vec2): boolean {
    if (!this.cacheValid) this.rebuild(store, index);
    const ctx = this.canvas.getContext("2d");
    if (ctx === null) return false;
    ctx.clearRect(0, 0, WIDTH, HEIGHT);
    ctx.drawImage(this.cache, 0, 0);
    const [x, y, width, height] = visibleWorldRect(view, screen);
    ctx.strokeStyle = THEME.selected;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(this.toMapX(x), this.toMapY(y), width * this.scale, height * this.scale);
    return true;
  }

  private rebuild(store: Store, index: SpatialIndex): void {
    const rects: Rect[] = [];
    for (const node of store.list("node")) {
      const rect = index.boundsOf(node.id);
      if (rect !== undefined) rects.push(rect);
    }
    this.bounds = unionRects(rects) ?? [0, 0, 1000, 700];
    this.scale = Math.min((WIDTH - 10) / this.bounds[2], (HEIGHT - 10) / this.bounds[3]);
    const ctx = this.cache.getContext("2d");
    if (ctx === null) return;
    ctx.clearRect(0, 0, WIDTH, HEIGHT);
    ctx.fillStyle = "rgba(20, 22, 26, 0.85)";
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    ctx.fillStyle = THEME.muted;
    for (const [x, y, width, height] of rects) {
      ctx.fillRect(this.toMapX(x), this.toMapY(y), Math.max(1, width * this.scale), Math.max(1, height * this.scale));
    }
    this.cacheValid = true;
  }

  private padX(): number {
    return (WIDTH - this.bounds[2] * this.scale) / 2;
  }

  private padY(): number {
    return (HEIGHT - this.bounds[3] * this.scale) / 2;
  }

  private toMapX(x: number): number {
    return (x - this.bounds[0]) * this.scale + this.padX();
  }

  private toMapY(y: number): number {
    return (y - this.bounds[1]) * this.scale + this.padY();
  }
}
