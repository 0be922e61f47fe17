/**
 * What is under a world point, in the order a pointer should grab it: a socket (links are
 * made from sockets), a widget, a node, a reroute, a group title, a link. Nodes come from
 * the spatial index, so a click costs the same on a 10-node and a 1,000-node graph.
 */

import { nodesInGroup, type GroupRecord, type LinkRecord, type Store, type Vec2 } from "../model";
import { distanceToCurve, linkCurve, socketAt, REROUTE_RADIUS, type ActionSlot, type SocketSlot, type WidgetSlot } from "./geometry";
import { GROUP_TITLE_HEIGHT } from "./draw-node";
import type { Renderer } from "./renderer";
import { rectContains } from "./viewport";
import { widgetKind, widgetZones, type WidgetZones } from "./widgets";

export type Hit =
  | { readonly kind: "socket"; readonly node: string; readonly side: "input" | "output"; readonly slot: SocketSlot }
  | { readonly kind: "widget"; readonly node: string; readonly widget: WidgetSlot; readonly zones: WidgetZones; readonly zone: keyof WidgetZones }
  | { readonly kind: "action"; readonly node: string; readonly action: ActionSlot }
  | { readonly kind: "node"; readonly node: string; readonly title: boolean }
  | { readonly kind: "resize"; readonly node: string }
  | { readonly kind: "reroute"; readonly reroute: string }
  | { readonly kind: "group"; readonly group: GroupRecord }
  | { readonly kind: "link"; readonly link: LinkRecord }
  | { readonly kind: "empty" };

/** The square at a node's bottom-right corner that resizes it. */
export const RESIZE_GRIP = 10;

export function hitTest(store: Store, renderer: Renderer, world: Vec2, selection: ReadonlySet<string>, withLinks: boolean): Hit {
  const reach = 12;
  const candidates = renderer.index.query([world[0] - reach, world[1] - reach, reach * 2, reach * 2]);
  // Selected nodes are drawn on top, so they are hit first.
  candidates.sort((a, b) => Number(selection.has(b)) - Number(selection.has(a)));
  for (const id of candidates) {
    const node = store.get("node", id);
    if (node === undefined) continue;
    const layout = renderer.layoutOf(node);
    const socket = socketAt(layout, world);
    if (socket !== undefined) {
      const isWidget = layout.widgets.some((widget) => widget.input.name === socket.slot.name);
      const linked = store.has("link", `${id}:${socket.slot.name}`);
      // An unlinked widget hides its dot, so a press on its row edits the widget; only the
      // node's very edge still grabs the (hidden) socket, to drag a link out of it.
      if (!isWidget || linked || world[0] < layout.rect[0] + 4) return { kind: "socket", node: id, side: socket.side, slot: socket.slot };
    }
  }
  for (const id of candidates) {
    const node = store.get("node", id);
    if (node === undefined) continue;
    const layout = renderer.layoutOf(node);
    if (!rectContains(layout.rect, world)) continue;
    const [x, y, width, height] = layout.rect;
    if (!node.collapsed && world[0] >= x + width - RESIZE_GRIP && world[1] >= y + height - RESIZE_GRIP) return { kind: "resize", node: id };
    const action = layout.actions?.find((candidate) => rectContains(candidate.rect, world));
    if (action !== undefined) return { kind: "action", node: id, action };
    for (const widget of layout.widgets) {
      if (!rectContains(widget.rect, world)) continue;
      const zones = widgetZones(widgetKind(widget.input), widget.rect);
      const zone = (["decrement", "increment", "mode"] as const).find((name) => {
        const rect = zones[name];
        return rect !== undefined && rectContains(rect, world);
      });
      return { kind: "widget", node: id, widget, zones, zone: zone ?? "body" };
    }
    return { kind: "node", node: id, title: world[1] <= layout.rect[1] + 26 };
  }
  for (const reroute of store.list("reroute")) {
    if (Math.hypot(reroute.pos[0] - world[0], reroute.pos[1] - world[1]) <= REROUTE_RADIUS + 3) return { kind: "reroute", reroute: reroute.id };
  }
  for (const group of [...store.list("group")].reverse()) {
    const [x, y, width] = group.rect;
    if (rectContains([x, y, width, GROUP_TITLE_HEIGHT], world)) return { kind: "group", group };
  }
  if (withLinks) {
    for (const link of store.list("link")) {
      const from = renderer.endpoint(link.from.node, link.from.output, "output");
      const to = renderer.endpoint(link.to.node, link.to.input, "input");
      if (from !== undefined && to !== undefined && distanceToCurve(linkCurve(from.at, to.at), world) < 6) return { kind: "link", link };
    }
  }
  return { kind: "empty" };
}

/** Ids a drag of `ids` moves: the items themselves plus the nodes inside dragged groups. */
export function dragSet(store: Store, ids: Iterable<string>): Set<string> {
  const moving = new Set<string>();
  for (const id of ids) {
    if (store.get("node", id)?.extraUi?.["pinned"] === true) continue; // pinned (node menu): stays put
    moving.add(id);
    if (store.has("group", id)) for (const inside of nodesInGroup(store, id)) moving.add(inside);
  }
  return moving;
}
