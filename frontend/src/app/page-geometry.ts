/**
 * Where things on the canvas are on the page, in client coordinates: sockets, widgets, node
 * buttons, sigma plots and node boxes of the tab on screen. Browser tests and benchmarks
 * drag and click at these points (`test-hooks.ts`); the app itself never needs them.
 */

import type { Renderer } from "../canvas/renderer";
import { inputSlot, outputSlot } from "../canvas/geometry";
import { toScreen } from "../canvas/viewport";
import type { Rect as WorldRect, Vec2 } from "../model";
import type { Store } from "../model/store";

type Rect = [left: number, top: number, width: number, height: number];

export class PageGeometry {
  constructor(
    private readonly renderer: Renderer,
    private readonly store: () => Store | undefined,
  ) {}

  socketPosition(nodeId: string, name: string, side: "input" | "output"): Vec2 | undefined {
    const layout = this.layoutOf(nodeId);
    if (layout === undefined) return undefined;
    const slot = side === "input" ? inputSlot(layout, name) : outputSlot(layout, name);
    return slot === undefined ? undefined : this.toClient(slot.at);
  }

  widgetPosition(nodeId: string, name: string): Vec2 | undefined {
    const widget = this.layoutOf(nodeId)?.widgets.find((candidate) => candidate.input.name === name);
    return widget === undefined ? undefined : this.middleOf(widget.rect);
  }

  /** The middle of a node's button (Load Image's "upload" or "edit-mask"). */
  actionPosition(nodeId: string, id: string): Vec2 | undefined {
    const action = this.layoutOf(nodeId)?.actions?.find((candidate) => candidate.id === id);
    return action === undefined ? undefined : this.middleOf(action.rect);
  }

  /** Where a SIGMAS output's plot is. */
  plotRect(nodeId: string, output: string): Rect | undefined {
    const plot = this.layoutOf(nodeId)?.plots?.find((candidate) => candidate.output === output);
    return plot === undefined ? undefined : this.boxOf(plot.rect);
  }

  nodeTitlePosition(nodeId: string): Vec2 | undefined {
    const layout = this.layoutOf(nodeId);
    if (layout === undefined) return undefined;
    const [x, y] = layout.rect;
    return this.toClient([x + 60, y + 13]);
  }

  nodeRect(nodeId: string): Rect | undefined {
    const layout = this.layoutOf(nodeId);
    return layout === undefined ? undefined : this.boxOf(layout.rect);
  }

  private layoutOf(nodeId: string): ReturnType<Renderer["layoutOf"]> | undefined {
    const node = this.store()?.get("node", nodeId);
    return node === undefined ? undefined : this.renderer.layoutOf(node);
  }

  private middleOf([x, y, width, height]: WorldRect): Vec2 {
    return this.toClient([x + width / 2, y + height / 2]);
  }

  private boxOf([x, y, width, height]: WorldRect): Rect {
    const [left, top] = this.toClient([x, y]);
    const scale = this.renderer.view.scale;
    return [left, top, width * scale, height * scale];
  }

  private toClient(world: Vec2): Vec2 {
    const box = this.renderer.element.getBoundingClientRect();
    const [x, y] = toScreen(this.renderer.view, world);
    return [box.left + x, box.top + y];
  }
}
