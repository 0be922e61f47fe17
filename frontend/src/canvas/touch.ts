/**
 * Touch: two fingers pinch to zoom and move together to pan; one finger keeps doing what a
 * mouse does (Interaction handles it). Listens in the capture phase on the canvas, so while
 * two or more fingers are down their events never reach Interaction; when the second
 * finger lands, the first finger's gesture there (a drag, a box selection) is cancelled
 * with a pointercancel, as a browser does when it takes a touch over.
 *
 * `pinchView` is the pure part: the view that keeps the world point under the fingers'
 * midpoint under it, scaled by how far the fingers moved apart.
 */

import type { Vec2 } from "../model";
import type { Renderer } from "./renderer";
import { clampScale, type Viewport } from "./viewport";

type Pair = readonly [Vec2, Vec2];

function midpoint([a, b]: Pair): Vec2 {
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
}

function spread([a, b]: Pair): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** The view after two fingers moved from `before` to `after` (screen points). */
export function pinchView(view: Viewport, before: Pair, after: Pair): Viewport {
  const from = midpoint(before);
  const to = midpoint(after);
  const distance = spread(before);
  const scale = clampScale(view.scale * (distance > 0 ? spread(after) / distance : 1));
  // The world point under the old midpoint goes under the new one.
  const world: Vec2 = [(from[0] - view.offset[0]) / view.scale, (from[1] - view.offset[1]) / view.scale];
  return { scale, offset: [to[0] - world[0] * scale, to[1] - world[1] * scale] };
}

export class TouchGestures {
  private readonly touches = new Map<number, Vec2>();
  private cancelling = false;
  /** Counts for tests: pinch or two-finger pan steps applied. */
  steps = 0;

  constructor(private readonly renderer: Renderer) {
    const element = renderer.element;
    element.addEventListener("pointerdown", (event) => this.down(event), { capture: true });
    element.addEventListener("pointermove", (event) => this.move(event), { capture: true });
    element.addEventListener("pointerup", (event) => this.up(event), { capture: true });
    element.addEventListener("pointercancel", (event) => this.up(event), { capture: true });
  }

  private local(event: PointerEvent): Vec2 {
    const box = this.renderer.element.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  private down(event: PointerEvent): void {
    if (event.pointerType !== "touch") return;
    this.touches.set(event.pointerId, this.local(event));
    if (this.touches.size < 2) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    const [first] = this.touches.keys();
    if (this.touches.size === 2 && first !== undefined) {
      this.cancelling = true;
      this.renderer.element.dispatchEvent(new PointerEvent("pointercancel", { pointerId: first, pointerType: "touch", bubbles: true }));
      this.cancelling = false;
    }
  }

  private move(event: PointerEvent): void {
    if (event.pointerType !== "touch" || !this.touches.has(event.pointerId)) return;
    const before = this.pair();
    this.touches.set(event.pointerId, this.local(event));
    if (before === undefined) return;
    event.stopImmediatePropagation();
    const after = this.pair();
    if (after === undefined) return;
    this.renderer.view = pinchView(this.renderer.view, before, after);
    this.steps += 1;
  }

  private up(event: PointerEvent): void {
    if (this.cancelling || event.pointerType !== "touch") return;
    const wasPinching = this.touches.size >= 2;
    this.touches.delete(event.pointerId);
    if (wasPinching) event.stopImmediatePropagation();
  }

  /** The first two fingers down, if two are. */
  private pair(): Pair | undefined {
    const [a, b] = this.touches.values();
    return a === undefined || b === undefined ? undefined : [a, b];
  }
}
