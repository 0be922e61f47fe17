/**
 * What the right-click menus do, as plain functions over the store: each is one transaction
 * (one undo step) or a pure read, so the menus stay thin and every action is tested without
 * a page. Node colour and pin live in the node's `ui` beside the keys ComfyUI uses for them
 * (`color` for the title bar, `bgcolor` for the body, `pinned`), so they survive a round trip
 * and never reach the executor.
 */

import { fitRect, groupMembers, type BoxOf } from "../model/auto-layout-arrange";
import {
  REROUTE_INPUT,
  REROUTE_OUTPUT,
  addReroute,
  connect,
  copySelection,
  disconnect,
  paste,
  type Catalog,
  type NodeRecord,
  type NodeSpec,
  type Store,
  type StoreReader,
  type Vec2,
  type WorkflowDocument,
} from "../model";

/** The node colours ComfyUI offers (title bar, body), by the names its menu shows. */
export const NODE_COLORS: Readonly<Record<string, { readonly color: string; readonly bgcolor: string }>> = {
  red: { color: "#322", bgcolor: "#533" },
  brown: { color: "#332922", bgcolor: "#593930" },
  green: { color: "#232", bgcolor: "#353" },
  blue: { color: "#223", bgcolor: "#335" },
  pale_blue: { color: "#2a363b", bgcolor: "#3f5159" },
  cyan: { color: "#233", bgcolor: "#355" },
  purple: { color: "#323", bgcolor: "#535" },
  yellow: { color: "#432", bgcolor: "#653" },
  black: { color: "#222", bgcolor: "#000" },
};

/** Group colours ComfyUI offers (the same names, one colour each). */
export const GROUP_COLORS: Readonly<Record<string, string>> = {
  red: "#b06634",
  brown: "#593930",
  green: "#8A8",
  blue: "#88A",
  pale_blue: "#3f789e",
  cyan: "#8AA",
  purple: "#a1309b",
  yellow: "#b58b2a",
};

export function nodeColor(node: NodeRecord): { color?: string; bgcolor?: string } {
  const ui = node.extraUi ?? {};
  return {
    ...(typeof ui["color"] === "string" ? { color: ui["color"] } : {}),
    ...(typeof ui["bgcolor"] === "string" ? { bgcolor: ui["bgcolor"] } : {}),
  };
}

export function isPinned(node: NodeRecord): boolean {
  return node.extraUi?.["pinned"] === true;
}

/** Sets (or with undefined, clears) the colour of nodes by its name in NODE_COLORS. */
export function setNodeColor(store: Store, ids: Iterable<string>, name: string | undefined): void {
  const colors = name === undefined ? undefined : NODE_COLORS[name];
  if (name !== undefined && colors === undefined) throw new Error(`no node colour "${name}"; choose one of ${Object.keys(NODE_COLORS).join(", ")}`);
  store.transact(name === undefined ? "Clear colour" : `Colour ${name}`, (tx) => {
    for (const id of ids) {
      if (!tx.has("node", id)) continue;
      tx.update("node", id, (node) => {
        const { color: _color, bgcolor: _bgcolor, ...rest } = node.extraUi ?? {};
        const extraUi = colors === undefined ? rest : { ...rest, ...colors };
        const { extraUi: _old, ...record } = node;
        return Object.keys(extraUi).length === 0 ? record : { ...record, extraUi };
      });
    }
  });
}

/** Pins every node if any is unpinned, else unpins them all (pinned nodes do not move). */
export function togglePinned(store: Store, ids: Iterable<string>): boolean {
  const nodes = [...ids].map((id) => store.get("node", id)).filter((node) => node !== undefined);
  const pin = !nodes.every(isPinned);
  store.transact(pin ? "Pin" : "Unpin", (tx) => {
    for (const node of nodes) {
      tx.update("node", node.id, (current) => {
        const { pinned: _old, ...rest } = current.extraUi ?? {};
        const extraUi = pin ? { ...rest, pinned: true } : rest;
        const { extraUi: _extra, ...record } = current;
        return Object.keys(extraUi).length === 0 ? record : { ...record, extraUi };
      });
    }
  });
  return pin;
}

/** Copies of the nodes (values kept, links among them kept, links from outside dropped), offset. */
export function cloneNodes(store: Store, ids: Iterable<string>, offset: Vec2 = [30, 30]): string[] {
  const fragment: WorkflowDocument = copySelection(store, ids);
  return [...paste(store, fragment, { offset, withLinks: false }).ids.values()];
}

/** Splits a link with a reroute at `at`: source → reroute → target, one undo step. */
export function insertReroute(store: Store, linkId: string, at: Vec2): string | undefined {
  const link = store.get("link", linkId);
  if (link === undefined) return undefined;
  return store.transact("Add reroute", () => {
    const reroute = addReroute(store, [Math.round(at[0]), Math.round(at[1])]);
    const first = connect(store, link.from, { node: reroute, input: REROUTE_INPUT });
    const second = connect(store, { node: reroute, output: REROUTE_OUTPUT }, link.to);
    if (!first.ok || !second.ok) throw new Error(`cannot reroute ${linkId}: ${!first.ok ? first.reason : second.ok ? "" : second.reason}`);
    return reroute;
  });
}

export function deleteLink(store: Store, linkId: string): boolean {
  const link = store.get("link", linkId);
  return link === undefined ? false : disconnect(store, link.to);
}

/** The nodes a group holds (their box's centre inside it). */
export function groupNodes(store: StoreReader, groupId: string, boxOf: BoxOf): string[] {
  return groupMembers(store, boxOf).get(groupId) ?? [];
}

/** Shrinks or grows a group to hug the nodes it holds; false when it holds none. */
export function fitGroupToNodes(store: Store, groupId: string, boxOf: BoxOf): boolean {
  const rects = groupNodes(store, groupId, boxOf)
    .map((id) => store.get("node", id))
    .filter((node) => node !== undefined)
    .map((node) => [node.pos[0], node.pos[1], ...boxOf(node).size] as const);
  const rect = fitRect(rects);
  if (rect === undefined) return false;
  store.transact("Fit group", (tx) => tx.update("group", groupId, (group) => ({ ...group, rect })));
  return true;
}

export function setGroupColor(store: Store, groupId: string, name: string | undefined): void {
  const color = name === undefined ? undefined : GROUP_COLORS[name];
  if (name !== undefined && color === undefined) throw new Error(`no group colour "${name}"; choose one of ${Object.keys(GROUP_COLORS).join(", ")}`);
  store.transact("Group colour", (tx) =>
    tx.update("group", groupId, (group) => {
      const { color: _old, ...rest } = group;
      return color === undefined ? rest : { ...rest, color };
    }),
  );
}

/** Removes the group's frame only; its nodes stay. */
export function removeGroup(store: Store, groupId: string): void {
  store.transact("Remove group", (tx) => tx.remove("group", groupId));
}

/** The catalog by category for "Add node": categories sorted, nodes by display name. */
export function nodesByCategory(catalog: Catalog): { readonly category: string; readonly specs: readonly NodeSpec[] }[] {
  const byCategory = new Map<string, NodeSpec[]>();
  for (const spec of catalog.specs) {
    const list = byCategory.get(spec.category) ?? [];
    list.push(spec);
    byCategory.set(spec.category, list);
  }
  return [...byCategory.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, specs]) => ({ category, specs: [...specs].sort((a, b) => a.display_name.localeCompare(b.display_name)) }));
}

/**
 * Run to here: the node and everything it needs, dependencies first (reroutes resolved),
 * as the server's planner will run them. Muted and bypassed nodes are the server's to judge.
 */
export function runToHerePlan(store: StoreReader, target: string): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const sourcesOf = (id: string): string[] => {
    const sources: string[] = [];
    for (const link of store.list("link")) {
      if (link.to.node !== id) continue;
      let from = link.from.node;
      // Follow a reroute chain back to the node that feeds it.
      const visited = new Set<string>();
      while (store.has("reroute", from) && !visited.has(from)) {
        visited.add(from);
        const into = [...store.list("link")].find((candidate) => candidate.to.node === from);
        if (into === undefined) break;
        from = into.from.node;
      }
      if (store.has("node", from)) sources.push(from);
    }
    return sources.sort();
  };
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const source of sourcesOf(id)) visit(source);
    order.push(id);
  };
  if (store.has("node", target)) visit(target);
  return order;
}
