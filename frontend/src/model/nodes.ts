/**
 * Editing operations on nodes (and the other placeable items: reroutes, groups). Each is one
 * transaction with a human label for the undo menu; continuous gestures (typing, dragging)
 * pass a merge key so they undo as one step.
 */

import { widgetDefaults, type InputSpec } from "./catalog";
import { linksTouching } from "./graph";
import { describeValue } from "./json";
import { idBaseForType, isIdTaken, uniqueId } from "./ids";
import type { LiteralValue, NodeRecord, Vec2 } from "./records";
import { releaseDetachedReroutes } from "./reroutes";
import type { Store } from "./store";
import type { NodeMode } from "./workflow-document";

export interface CreateNodeOptions {
  readonly id?: string;
  readonly title?: string;
}

/** Adds a node of a catalog type with every widget at its default. */
export function createNode(store: Store, type: string, pos: Vec2, options: CreateNodeOptions = {}): NodeRecord {
  const spec = store.catalog.get(type);
  if (spec === undefined) {
    throw new Error(`cannot create a node of type "${type}": the node catalog has no such type`);
  }
  return store.transact(`Add ${spec.display_name}`, (tx) => {
    const id = options.id ?? uniqueId(tx, idBaseForType(type));
    if (isIdTaken(tx, id)) throw new Error(`cannot create node "${id}": the id is taken`);
    const node: NodeRecord = {
      id,
      type,
      pos,
      collapsed: false,
      inputs: widgetDefaults(spec),
      ...(options.title === undefined ? {} : { title: options.title }),
    };
    tx.put("node", node);
    return node;
  });
}

/** Deletes nodes, reroutes and groups by id, with every link that touches them. */
export function removeItems(store: Store, ids: Iterable<string>): void {
  const doomed = new Set(ids);
  store.transact("Delete", (tx) => {
    const farEnds: string[] = [];
    for (const link of linksTouching(tx, doomed)) {
      tx.remove("link", link.id);
      farEnds.push(link.from.node, link.to.node);
    }
    for (const id of doomed) {
      tx.remove("node", id);
      tx.remove("reroute", id);
      tx.remove("group", id);
    }
    releaseDetachedReroutes(tx, farEnds);
  });
}

/** Moves nodes, reroutes and groups to new positions (top-left corner). */
export function moveItems(store: Store, positions: ReadonlyMap<string, Vec2>, mergeKey?: string): void {
  const options = mergeKey === undefined ? {} : { mergeKey };
  store.transact(
    "Move",
    (tx) => {
      for (const [id, pos] of positions) {
        const copy: Vec2 = [pos[0], pos[1]];
        if (tx.has("node", id)) tx.update("node", id, (node) => ({ ...node, pos: copy }));
        else if (tx.has("reroute", id)) tx.update("reroute", id, (reroute) => ({ ...reroute, pos: copy }));
        else if (tx.has("group", id)) {
          tx.update("group", id, (group) => ({ ...group, rect: [pos[0], pos[1], group.rect[2], group.rect[3]] }));
        } else throw new Error(`cannot move "${id}": there is no node, reroute or group with that id`);
      }
    },
    options,
  );
}

/**
 * Sets a widget's literal value. Edits of the same widget merge into one undo step, so
 * typing a prompt undoes as a whole rather than letter by letter.
 */
export function setWidgetValue(store: Store, nodeId: string, input: string, value: LiteralValue): void {
  const node = store.get("node", nodeId);
  if (node === undefined) throw new Error(`cannot set "${input}": there is no node "${nodeId}"`);
  const spec = store.catalog.input(node.type, input);
  if (spec !== undefined) {
    const problem = literalProblem(spec, value);
    if (problem !== undefined) throw new TypeError(`cannot set "${input}" of node "${nodeId}": ${problem}`);
  }
  store.transact(
    `Edit ${input}`,
    (tx) => tx.update("node", nodeId, (current) => ({ ...current, inputs: { ...current.inputs, [input]: value } })),
    { mergeKey: `widget:${nodeId}:${input}` },
  );
}

export function setTitle(store: Store, nodeId: string, title: string | undefined): void {
  store.transact(
    "Rename",
    (tx) =>
      tx.update("node", nodeId, (node) => {
        const { title: _old, ...rest } = node;
        return title === undefined || title === "" ? rest : { ...rest, title };
      }),
    { mergeKey: `title:${nodeId}` },
  );
}

/** Sets the mode of nodes (one undo step); "run" removes the key, as the file format does. */
export function setMode(store: Store, nodeIds: Iterable<string>, mode: NodeMode): void {
  const ids = [...nodeIds];
  for (const id of ids) {
    if (!store.has("node", id)) throw new Error(`cannot set the mode of "${id}": there is no such node`);
  }
  const label = mode === "run" ? "Run" : mode === "mute" ? "Mute" : "Bypass";
  store.transact(label, (tx) => {
    for (const id of ids) {
      tx.update("node", id, (node) => {
        const { mode: _old, ...rest } = node;
        return mode === "run" ? rest : { ...rest, mode };
      });
    }
  });
}

/**
 * Ctrl+M / Ctrl+B: if every node already has `mode`, they all go back to "run"; otherwise
 * they all get `mode`. Toggling a mixed selection twice therefore ends where ComfyUI users
 * expect (all on, then all off) rather than flipping each node separately.
 */
export function toggleMode(store: Store, nodeIds: Iterable<string>, mode: Exclude<NodeMode, "run">): NodeMode | undefined {
  const nodes = [...nodeIds].map((id) => store.get("node", id)).filter((node) => node !== undefined);
  if (nodes.length === 0) return undefined;
  const next: NodeMode = nodes.every((node) => node.mode === mode) ? "run" : mode;
  setMode(store, nodes.map((node) => node.id), next);
  return next;
}

export function setCollapsed(store: Store, nodeId: string, collapsed: boolean): void {
  store.transact(collapsed ? "Collapse" : "Expand", (tx) => tx.update("node", nodeId, (node) => ({ ...node, collapsed })));
}

export function resizeNode(store: Store, nodeId: string, size: Vec2, mergeKey?: string): void {
  store.transact(
    "Resize",
    (tx) => tx.update("node", nodeId, (node) => ({ ...node, size: [size[0], size[1]] })),
    mergeKey === undefined ? {} : { mergeKey },
  );
}

/**
 * Why `value` cannot be this widget's value, or undefined. Only the shape is checked here
 * (ranges and choice lists change with the server's model folders and are the validator's
 * job), so a stale value loaded from a file can still be shown and fixed.
 */
export function literalProblem(spec: InputSpec, value: LiteralValue): string | undefined {
  if (spec.kind !== "widget") return `"${spec.name}" is a ${spec.type} socket, not a widget`;
  const values = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && spec.accepts_list !== true) {
    return `expected one ${spec.type} value, got the list ${describeValue(value)}`;
  }
  const fits = (item: unknown): boolean => {
    switch (spec.type) {
      case "INT":
        return Number.isInteger(item) || typeof item === "bigint";
      case "FLOAT":
        return typeof item === "number" && Number.isFinite(item);
      case "BOOLEAN":
        return typeof item === "boolean";
      case "STRING":
      case "ENUM":
        return typeof item === "string";
      default:
        return false; // socket types were refused above
    }
  };
  const bad = values.find((item) => !fits(item));
  return bad === undefined ? undefined : `expected ${spec.type}, got ${describeValue(bad)}`;
}
