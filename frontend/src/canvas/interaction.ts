/**
 * Pointer and wheel input on the canvas, turned into model operations.
 *
 * Gestures: drag empty space or middle-drag to pan, Shift/Ctrl-drag empty space to box-select,
 * drag nodes/groups/reroutes to move them (one undo step per drag), drag from a socket to
 * wire (compatible sockets glow; dropping on empty canvas opens a search filtered by the
 * link's type), drag a linked input away to unplug it, Alt-click a link to add a reroute,
 * Alt-drag a reroute to wire from it. Right-drag pans; a right-click on a node opens its
 * menu (mute, bypass, delete...). Wheel: Ctrl/pinch zooms, a trackpad's two-finger
 * scroll pans, a mouse wheel zooms.
 */

import {
  canConnect,
  connect,
  disconnect,
  moveItems,
  resizeNode,
  setWidgetValue,
  addReroute,
  REROUTE_INPUT,
  REROUTE_OUTPUT,
  linkIdFor,
  type InputRef,
  type LinkRecord,
  type OutputRef,
  type Rect,
  type Vec2,
} from "../model";
import type { DocumentTab } from "../app/document-tab";
import { dragSet, hitTest, type Hit } from "./hit-test";
import type { Renderer } from "./renderer";
import { pan, rectFromCorners, rectsIntersect, toScreen, toWorld, visibleWorldRect, zoomAt } from "./viewport";
import { SEED_CONTROLS, SEED_CONTROL_KEY, seedControl, sliderValue, stepNumber, widgetKind, type NumberValue } from "./widgets";
import type { ActionSlot, WidgetSlot } from "./geometry";
import { snapPoint } from "./preferences";

export interface SearchFilter {
  readonly socketType: string | undefined;
  readonly direction: "input" | "output";
  /** Called with the new node's id and the matching socket name. */
  readonly connect: (nodeId: string, socket: string) => void;
}

export interface InteractionHost {
  readonly tab: DocumentTab | undefined;
  select(ids: Iterable<string>): void;
  openSearch(screen: Vec2, world: Vec2, filter?: SearchFilter): void;
  editWidget(nodeId: string, widget: WidgetSlot): void;
  closeOverlays(): void;
  rename(nodeId: string): void;
  toast(message: string): void;
  /** A right-click (without dragging) on a node: its menu at a canvas point. */
  openNodeMenu(screen: Vec2, nodeId: string): void;
  /** A right-click off any node: on a link, a group or the empty canvas. */
  openMenuAt?(screen: Vec2, world: Vec2, hit: Hit): void;
  /** A button in a node's body was clicked (Load Image's Upload, Edit mask). */
  nodeAction(nodeId: string, action: ActionSlot): void;
}

type Gesture =
  | { kind: "pan"; last: Vec2; moved: boolean; clearOnClick: boolean; menu: boolean }
  | { kind: "box"; start: Vec2; additive: boolean }
  | { kind: "move"; start: Vec2; origins: Map<string, Vec2>; key: string }
  | { kind: "link"; fixed: OutputRef | InputRef; from: "output" | "input"; detached: LinkRecord | undefined; type: string | undefined }
  | { kind: "number"; node: string; widget: WidgetSlot; startX: number; startValue: NumberValue; moved: boolean; key: string }
  | { kind: "slider"; node: string; widget: WidgetSlot; key: string }
  | { kind: "resize"; node: string; start: Vec2; size: Vec2; key: string }
  // Editors open on release: opening on press would lose focus to the press's own default.
  | { kind: "edit"; node: string; widget: WidgetSlot }
  // Node buttons act on release too, and only if the pointer is still on them.
  | { kind: "action"; node: string; action: ActionSlot };

let gestureCounter = 0;

export class Interaction {
  private gesture: Gesture | undefined;

  constructor(
    private readonly renderer: Renderer,
    private readonly host: InteractionHost,
  ) {
    const element = renderer.element;
    element.addEventListener("pointerdown", (event) => this.down(event));
    element.addEventListener("pointermove", (event) => this.move(event));
    element.addEventListener("pointerup", (event) => this.up(event));
    element.addEventListener("pointercancel", () => this.cancel());
    element.addEventListener("dblclick", (event) => this.doubleClick(event));
    element.addEventListener("wheel", (event) => this.wheel(event), { passive: false });
    element.addEventListener("contextmenu", (event) => event.preventDefault());
  }

  private local(event: MouseEvent): Vec2 {
    const box = this.renderer.element.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  private world(event: MouseEvent): Vec2 {
    return toWorld(this.renderer.view, this.local(event));
  }

  private down(event: PointerEvent): void {
    const tab = this.host.tab;
    if (tab === undefined) return;
    this.host.closeOverlays();
    this.renderer.element.setPointerCapture(event.pointerId);
    if (event.button === 1 || event.button === 2) {
      // A right-drag pans; a right-click that did not move opens the node menu on release,
      // the same on every platform (the browser's contextmenu fires on press on some).
      this.gesture = { kind: "pan", last: this.local(event), moved: false, clearOnClick: false, menu: event.button === 2 };
      return;
    }
    if (event.button !== 0) return;
    const world = this.world(event);
    const hit = hitTest(tab.store, this.renderer, world, tab.selection, event.altKey);
    this.gesture = this.startGesture(tab, hit, world, event);
  }

  private startGesture(tab: DocumentTab, hit: Hit, world: Vec2, event: PointerEvent): Gesture | undefined {
    const store = tab.store;
    const additive = event.shiftKey || event.ctrlKey || event.metaKey;
    switch (hit.kind) {
      case "socket": {
        if (hit.side === "output") return this.startLink(tab, { node: hit.node, output: hit.slot.name }, "output", undefined);
        const existing = store.get("link", linkIdFor({ node: hit.node, input: hit.slot.name }));
        if (existing !== undefined) return this.startLink(tab, existing.from, "output", existing);
        return this.startLink(tab, { node: hit.node, input: hit.slot.name }, "input", undefined);
      }
      case "widget":
        return this.startWidget(tab, hit);
      case "action":
        this.host.select([hit.node]);
        return { kind: "action", node: hit.node, action: hit.action };
      case "node":
      case "reroute": {
        const id = hit.kind === "node" ? hit.node : hit.reroute;
        if (hit.kind === "reroute" && event.altKey) return this.startLink(tab, { node: id, output: REROUTE_OUTPUT }, "output", undefined);
        return this.startMove(tab, id, world, additive);
      }
      case "group":
        return this.startMove(tab, hit.group.id, world, additive);
      case "resize": {
        const node = store.get("node", hit.node);
        if (node === undefined) return undefined;
        const [, , width, height] = this.renderer.layoutOf(node).rect;
        gestureCounter += 1;
        return { kind: "resize", node: hit.node, start: world, size: [width, height], key: `resize:${gestureCounter}` };
      }
      case "link": {
        // One transaction, so adding a reroute into a link is one undo step.
        const reroute = store.transact("Add reroute", () => {
          const id = addReroute(store, world);
          connect(store, hit.link.from, { node: id, input: REROUTE_INPUT });
          connect(store, { node: id, output: REROUTE_OUTPUT }, hit.link.to);
          return id;
        });
        this.host.select([reroute]);
        return undefined;
      }
      case "empty":
        if (additive) return { kind: "box", start: world, additive: true };
        return { kind: "pan", last: this.local(event), moved: false, clearOnClick: true, menu: false };
    }
  }

  private startMove(tab: DocumentTab, id: string, world: Vec2, additive: boolean): Gesture {
    let selection = new Set(tab.selection);
    if (additive) {
      if (selection.has(id)) selection.delete(id);
      else selection.add(id);
    } else if (!selection.has(id)) selection = new Set([id]);
    this.host.select(selection);
    const origins = new Map<string, Vec2>();
    for (const moving of dragSet(tab.store, selection)) {
      const node = tab.store.get("node", moving);
      const reroute = tab.store.get("reroute", moving);
      const group = tab.store.get("group", moving);
      if (node !== undefined) origins.set(moving, node.pos);
      else if (reroute !== undefined) origins.set(moving, reroute.pos);
      else if (group !== undefined) origins.set(moving, [group.rect[0], group.rect[1]]);
    }
    gestureCounter += 1;
    return { kind: "move", start: world, origins, key: `move:${gestureCounter}` };
  }

  private startLink(tab: DocumentTab, fixed: OutputRef | InputRef, from: "output" | "input", detached: LinkRecord | undefined): Gesture {
    const store = tab.store;
    const compatible = new Set<string>();
    const visible = this.renderer.index.query(visibleWorldRect(this.renderer.view, this.renderer.screenSize));
    // Only visible sockets are checked: cheap on a huge graph, and only they can glow.
    for (const id of visible) {
      const node = store.get("node", id);
      if (node === undefined) continue;
      const layout = this.renderer.layoutOf(node);
      if (from === "output") {
        for (const slot of layout.inputs) {
          if (canConnect(store, fixed as OutputRef, { node: id, input: slot.name }).ok) compatible.add(`${id}:${slot.name}`);
        }
      } else {
        for (const slot of layout.outputs) {
          if (canConnect(store, { node: id, output: slot.name }, fixed as InputRef).ok) compatible.add(`${id}:${slot.name}`);
        }
      }
    }
    const anchor = from === "output"
      ? this.renderer.endpoint(fixed.node, (fixed as OutputRef).output, "output")
      : this.renderer.endpoint(fixed.node, (fixed as InputRef).input, "input");
    if (anchor === undefined) return { kind: "pan", last: [0, 0], moved: true, clearOnClick: false, menu: false };
    this.renderer.overlay.link = { anchor: anchor.at, pointer: anchor.at, type: anchor.type, from, compatible };
    this.renderer.markInteractiveDirty();
    return { kind: "link", fixed, from, detached, type: anchor.type };
  }

  private startWidget(tab: DocumentTab, hit: Extract<Hit, { kind: "widget" }>): Gesture | undefined {
    const store = tab.store;
    const node = store.get("node", hit.node);
    if (node === undefined) return undefined;
    const input = hit.widget.input;
    if (store.has("link", linkIdFor({ node: hit.node, input: input.name }))) return undefined;
    this.host.select([hit.node]);
    const kind = widgetKind(input);
    const value = node.inputs[input.name];
    gestureCounter += 1;
    const key = `widget:${gestureCounter}`;
    try {
      switch (kind) {
        case "toggle":
          setWidgetValue(store, hit.node, input.name, value !== true);
          return undefined;
        case "slider":
          setWidgetValue(store, hit.node, input.name, sliderValue(input, 0));
          return { kind: "slider", node: hit.node, widget: hit.widget, key };
        case "number":
        case "seed": {
          const fallback = input.default;
          const current: NumberValue =
            typeof value === "number" || typeof value === "bigint" ? value : typeof fallback === "bigint" ? fallback : Number(fallback ?? 0);
          if (hit.zone === "decrement" || hit.zone === "increment") {
            setWidgetValue(store, hit.node, input.name, stepNumber(input, current, hit.zone === "increment" ? 1 : -1));
            return undefined;
          }
          if (hit.zone === "mode") {
            const next = SEED_CONTROLS[(SEED_CONTROLS.indexOf(seedControl(node, input.name)) + 1) % SEED_CONTROLS.length] ?? "fixed";
            store.transact("Seed control", (tx) =>
              tx.update("node", hit.node, (record) => {
                const table = record.extraUi?.[SEED_CONTROL_KEY];
                const modes = typeof table === "object" && table !== null && !Array.isArray(table) ? table : {};
                return { ...record, extraUi: { ...record.extraUi, [SEED_CONTROL_KEY]: { ...modes, [input.name]: next } } };
              }),
            );
            return undefined;
          }
          return { kind: "number", node: hit.node, widget: hit.widget, startX: 0, startValue: current, moved: false, key };
        }
        default:
          return { kind: "edit", node: hit.node, widget: hit.widget };
      }
    } catch (error) {
      this.host.toast(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  }

  private move(event: PointerEvent): void {
    const gesture = this.gesture;
    const tab = this.host.tab;
    if (gesture === undefined || tab === undefined) return;
    const world = this.world(event);
    switch (gesture.kind) {
      case "pan": {
        const local = this.local(event);
        const dx = local[0] - gesture.last[0];
        const dy = local[1] - gesture.last[1];
        if (!gesture.moved && Math.hypot(dx, dy) < 3) return;
        gesture.moved = true;
        gesture.last = local;
        this.renderer.view = pan(this.renderer.view, dx, dy);
        return;
      }
      case "box":
        this.renderer.overlay.selectionBox = rectFromCorners(gesture.start, world);
        this.renderer.markInteractiveDirty();
        return;
      case "move": {
        const dx = world[0] - gesture.start[0];
        const dy = world[1] - gesture.start[1];
        const positions = new Map<string, Vec2>();
        for (const [id, [x, y]] of gesture.origins) positions.set(id, snapPoint([x + dx, y + dy]));
        moveItems(tab.store, positions, gesture.key);
        return;
      }
      case "link": {
        const overlay = this.renderer.overlay.link;
        if (overlay !== undefined) this.renderer.overlay.link = { ...overlay, pointer: world };
        this.renderer.markInteractiveDirty();
        return;
      }
      case "number": {
        if (gesture.startX === 0) gesture.startX = event.clientX;
        const steps = Math.trunc((event.clientX - gesture.startX) / 6);
        if (steps === 0 && !gesture.moved) return;
        gesture.moved = true;
        setWidgetValue(tab.store, gesture.node, gesture.widget.input.name, stepNumber(gesture.widget.input, gesture.startValue, steps));
        return;
      }
      case "slider": {
        const [x, , width] = gesture.widget.rect;
        setWidgetValue(tab.store, gesture.node, gesture.widget.input.name, sliderValue(gesture.widget.input, (world[0] - x) / width));
        return;
      }
      case "edit":
      case "action":
        return;
      case "resize": {
        // The layout never shrinks a node below its content, so only the width needs a floor.
        const width = Math.max(160, Math.round(gesture.size[0] + world[0] - gesture.start[0]));
        const height = Math.max(40, Math.round(gesture.size[1] + world[1] - gesture.start[1]));
        resizeNode(tab.store, gesture.node, [width, height], gesture.key);
        return;
      }
    }
  }

  private up(event: PointerEvent): void {
    const gesture = this.gesture;
    const tab = this.host.tab;
    this.gesture = undefined;
    if (gesture === undefined || tab === undefined) return;
    const world = this.world(event);
    switch (gesture.kind) {
      case "pan":
        if (!gesture.moved && gesture.clearOnClick) this.host.select([]);
        if (!gesture.moved && gesture.menu) this.openMenu(tab, event);
        return;
      case "box": {
        const box = this.renderer.overlay.selectionBox;
        delete this.renderer.overlay.selectionBox;
        this.renderer.markInteractiveDirty();
        if (box !== undefined) this.selectInBox(tab, box, gesture.additive);
        return;
      }
      case "move":
      case "resize":
        tab.undo.breakMerge();
        return;
      case "link":
        delete this.renderer.overlay.link;
        this.renderer.markInteractiveDirty();
        this.dropLink(tab, gesture, world, event);
        return;
      case "number":
        tab.undo.breakMerge();
        if (!gesture.moved) this.host.editWidget(gesture.node, gesture.widget);
        return;
      case "slider": {
        const [x, , width] = gesture.widget.rect;
        setWidgetValue(tab.store, gesture.node, gesture.widget.input.name, sliderValue(gesture.widget.input, (world[0] - x) / width));
        tab.undo.breakMerge();
        return;
      }
      case "edit":
        this.host.editWidget(gesture.node, gesture.widget);
        return;
      case "action": {
        const hit = hitTest(tab.store, this.renderer, world, tab.selection, false);
        if (hit.kind === "action" && hit.node === gesture.node && hit.action.id === gesture.action.id) this.host.nodeAction(gesture.node, gesture.action);
        return;
      }
    }
  }

  private openMenu(tab: DocumentTab, event: PointerEvent): void {
    const hit = hitTest(tab.store, this.renderer, this.world(event), tab.selection, false);
    const nodeId = hit.kind === "node" || hit.kind === "widget" || hit.kind === "socket" || hit.kind === "resize" || hit.kind === "action" ? hit.node : undefined;
    if (nodeId === undefined) {
      this.host.openMenuAt?.(this.local(event), this.world(event), hitTest(tab.store, this.renderer, this.world(event), tab.selection, true));
      return;
    }
    // The menu acts on the selection when the node is part of it, else on this node alone.
    if (!tab.selection.has(nodeId)) this.host.select([nodeId]);
    this.host.openNodeMenu(this.local(event), nodeId);
  }

  private cancel(): void {
    this.gesture = undefined;
    delete this.renderer.overlay.link;
    delete this.renderer.overlay.selectionBox;
    this.renderer.markInteractiveDirty();
  }

  private selectInBox(tab: DocumentTab, box: Rect, additive: boolean): void {
    const ids = new Set(additive ? tab.selection : []);
    for (const id of this.renderer.index.query(box)) ids.add(id);
    for (const reroute of tab.store.list("reroute")) {
      if (rectsIntersect([reroute.pos[0], reroute.pos[1], 1, 1], box)) ids.add(reroute.id);
    }
    this.host.select(ids);
  }

  private dropLink(tab: DocumentTab, gesture: Extract<Gesture, { kind: "link" }>, world: Vec2, event: PointerEvent): void {
    const store = tab.store;
    const hit = hitTest(store, this.renderer, world, tab.selection, false);
    const target = this.dropTarget(tab, gesture, hit);
    const detached = gesture.detached;
    if (target !== undefined) {
      const from = gesture.from === "output" ? (gesture.fixed as OutputRef) : (target as OutputRef);
      const to = gesture.from === "output" ? (target as InputRef) : (gesture.fixed as InputRef);
      if (detached !== undefined && detached.to.node === to.node && detached.to.input === to.input) return;
      const check = canConnect(store, from, to);
      if (!check.ok) {
        this.host.toast(check.reason);
        return;
      }
      store.transact("Connect", () => {
        if (detached !== undefined) disconnect(store, detached.to);
        connect(store, from, to);
      });
      return;
    }
    if (detached !== undefined) {
      disconnect(store, detached.to);
      return;
    }
    if (hit.kind !== "empty") return;
    const fixed = gesture.fixed;
    this.host.openSearch(toScreen(this.renderer.view, world), world, {
      socketType: gesture.type,
      direction: gesture.from === "output" ? "input" : "output",
      connect: (nodeId, socket) => {
        const result = gesture.from === "output"
          ? connect(store, fixed as OutputRef, { node: nodeId, input: socket })
          : connect(store, { node: nodeId, output: socket }, fixed as InputRef);
        if (!result.ok) this.host.toast(result.reason);
      },
    });
    void event;
  }

  /** The socket a link dropped at `hit` plugs into: the socket itself, or the first fitting one of a node. */
  private dropTarget(tab: DocumentTab, gesture: Extract<Gesture, { kind: "link" }>, hit: Hit): OutputRef | InputRef | undefined {
    const store = tab.store;
    const wantInput = gesture.from === "output";
    if (hit.kind === "socket" && (hit.side === "input") === wantInput) {
      return wantInput ? { node: hit.node, input: hit.slot.name } : { node: hit.node, output: hit.slot.name };
    }
    if (hit.kind === "reroute") return wantInput ? { node: hit.reroute, input: REROUTE_INPUT } : { node: hit.reroute, output: REROUTE_OUTPUT };
    const nodeId = hit.kind === "node" || hit.kind === "widget" || hit.kind === "action" ? hit.node : undefined;
    if (nodeId === undefined) return undefined;
    const node = store.get("node", nodeId);
    if (node === undefined) return undefined;
    const layout = this.renderer.layoutOf(node);
    if (wantInput) {
      const slot = layout.inputs.find((candidate) => canConnect(store, gesture.fixed as OutputRef, { node: nodeId, input: candidate.name }).ok && !store.has("link", `${nodeId}:${candidate.name}`))
        ?? layout.inputs.find((candidate) => canConnect(store, gesture.fixed as OutputRef, { node: nodeId, input: candidate.name }).ok);
      return slot === undefined ? undefined : { node: nodeId, input: slot.name };
    }
    const slot = layout.outputs.find((candidate) => canConnect(store, { node: nodeId, output: candidate.name }, gesture.fixed as InputRef).ok);
    return slot === undefined ? undefined : { node: nodeId, output: slot.name };
  }

  private doubleClick(event: MouseEvent): void {
    const tab = this.host.tab;
    if (tab === undefined) return;
    const world = this.world(event);
    const hit = hitTest(tab.store, this.renderer, world, tab.selection, false);
    if (hit.kind === "empty") this.host.openSearch(this.local(event), world);
    else if (hit.kind === "node" && hit.title) this.host.rename(hit.node);
  }

  private wheel(event: WheelEvent): void {
    event.preventDefault();
    this.host.closeOverlays();
    const anchor = this.local(event);
    const pixels = event.deltaMode === WheelEvent.DOM_DELTA_LINE ? 16 : 1;
    // Pinch gestures arrive as ctrl+wheel; trackpads scroll in x and in fractional steps.
    const trackpad = !event.ctrlKey && (event.deltaX !== 0 || !Number.isInteger(event.deltaY));
    if (trackpad) {
      this.renderer.view = pan(this.renderer.view, -event.deltaX * pixels, -event.deltaY * pixels);
      return;
    }
    const factor = Math.exp((-event.deltaY * pixels) / (event.ctrlKey ? 100 : 500));
    this.renderer.view = zoomAt(this.renderer.view, anchor, factor);
  }
}
