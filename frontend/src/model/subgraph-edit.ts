/**
 * Subgraph operations on a store, each one transaction (one undo step, one sync patch).
 *
 * They work on the workflow document (model/subgraph.ts does the graph surgery) and apply
 * the result by diffing records: what the new document lacks is removed, what differs is
 * put. The store never holds a half-made subgraph, and undo restores the selection's nodes.
 *
 * Opening a subgraph gives its definition as a document of its own (with the workflow's
 * definitions, so nested instances draw); closing writes the edited nodes back as the next
 * revision, dropping input targets and outputs whose inner node was deleted.
 */

import { uniqueId } from "./ids";
import { jsonEqual } from "./json";
import { RECORD_KINDS, type RecordKind, type RecordTypes } from "./records";
import type { Store, Transaction } from "./store";
import { inlineSubgraph, instanceType, makeSubgraph, subgraphIdOf } from "./subgraph";
import { defineSubgraphs } from "./subgraph-catalog";
import { recordsFromWorkflow, toWorkflow, type WorkflowRecords } from "./workflow";
import { PLAIN_WORKFLOW_VERSION, WORKFLOW_SCHEMA, type SubgraphDefinition, type WorkflowDocument, type WorkflowNode } from "./workflow-document";
import type { Vec2 } from "./records";

/** Makes the store hold `document`, changing only the records that differ. */
export function replaceDocument(store: Store, document: WorkflowDocument, label: string): void {
  const records = recordsFromWorkflow(document);
  defineSubgraphs(store.catalog, document.subgraphs);
  store.transact(label, (tx) => {
    for (const kind of RECORD_KINDS) replaceKind(tx, kind, records);
  });
}

function replaceKind<K extends RecordKind>(tx: Transaction, kind: K, records: WorkflowRecords): void {
  const next: readonly RecordTypes[K][] = records[kind] as unknown as readonly RecordTypes[K][];
  const ids = new Set(next.map((record) => record.id));
  for (const record of [...tx.list(kind)]) if (!ids.has(record.id)) tx.remove(kind, record.id);
  for (const record of next) {
    const old = tx.get(kind, record.id);
    if (old === undefined || !jsonEqual(old, record)) tx.put(kind, record);
  }
}

/** Folds the selected nodes into a new subgraph; returns the instance's id. */
export function makeSubgraphFromSelection(store: Store, selection: Iterable<string>, name = "Subgraph"): string {
  const document = toWorkflow(store);
  const taken = new Set(Object.keys(document.subgraphs ?? {}));
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "") || "subgraph";
  let definitionId = slug;
  for (let n = 2; taken.has(definitionId); n += 1) definitionId = `${slug}_${n}`;
  const ids = [...selection].filter((id) => store.has("node", id));
  const instanceId = uniqueId(store, definitionId);
  const typeOf = ({ node, output }: { node: string; output: string }): string => {
    const type = store.get("node", node)?.type;
    return (type === undefined ? undefined : store.catalog.output(type, output)?.type) ?? "*";
  };
  replaceDocument(store, makeSubgraph(document, ids, { definitionId, instanceId, name, typeOf }), "Make subgraph");
  return instanceId;
}

/** Replaces an instance by its inner nodes; returns their ids in the store. */
export function inlineSubgraphNode(store: Store, instanceId: string): string[] {
  const before = new Set([...store.list("node")].map((node) => node.id));
  replaceDocument(store, inlineSubgraph(toWorkflow(store), instanceId), "Unpack subgraph");
  return [...store.list("node")].map((node) => node.id).filter((id) => !before.has(id));
}

/** The definition behind an instance node, if it is one. */
export function definitionOf(store: Store, nodeId: string): { id: string; definition: SubgraphDefinition } | undefined {
  const node = store.get("node", nodeId);
  const id = node === undefined ? undefined : subgraphIdOf(node.type);
  const definition = id === undefined ? undefined : store.document.subgraphs?.[id];
  return id === undefined || definition === undefined ? undefined : { id, definition };
}

/** A definition as a workflow document of its own, to open in a tab of its own. */
export function definitionDocument(store: Store, definitionId: string): WorkflowDocument {
  const definitions = store.document.subgraphs ?? {};
  const definition = definitions[definitionId];
  if (definition === undefined) throw new Error(`this workflow has no subgraph "${definitionId}"`);
  const others = Object.fromEntries(Object.entries(definitions).filter(([id]) => id !== definitionId));
  return {
    schema: WORKFLOW_SCHEMA,
    version: Object.keys(others).length > 0 ? 3 : PLAIN_WORKFLOW_VERSION,
    nodes: definition.nodes,
    ...(Object.keys(others).length > 0 ? { subgraphs: others } : {}),
    meta: { title: definition.name, subgraph: definitionId },
  };
}

/** Writes an edited definition back as its next revision; returns that revision. */
export function writeBackDefinition(store: Store, definitionId: string, edited: WorkflowDocument): number {
  const document = toWorkflow(store);
  const old = document.subgraphs?.[definitionId];
  if (old === undefined) throw new Error(`this workflow has no subgraph "${definitionId}"`);
  const nodes = edited.nodes;
  const inputs = old.inputs
    .map((input) => ({ ...input, targets: input.targets.filter((target) => target.node in nodes) }))
    .filter((input) => input.targets.length > 0);
  const outputs = old.outputs.filter((output) => output.node in nodes);
  const revision = (old.revision ?? 1) + 1;
  const definition: SubgraphDefinition = { ...old, revision, inputs, outputs, nodes };
  const kept = new Set(outputs.map((output) => output.name));
  const type = instanceType(definitionId);
  // Links to outputs that no longer exist go, as links to a deleted node's output would.
  const outer = Object.fromEntries(
    Object.entries(document.nodes).map(([id, node]) => [
      id,
      {
        ...node,
        inputs: Object.fromEntries(
          Object.entries(node.inputs).filter(([, value]) => {
            if (typeof value !== "object" || value === null || Array.isArray(value) || !("node" in value)) return true;
            return document.nodes[value.node]?.type !== type || kept.has(value.output);
          }),
        ),
      },
    ]),
  );
  replaceDocument(store, { ...document, version: 3, nodes: outer, subgraphs: { ...document.subgraphs, [definitionId]: definition } }, "Edit subgraph");
  return revision;
}

// ---- components: subgraphs saved for reuse across workflows ---------------------------------

export const COMPONENT_SCHEMA = "latentloom/component";

export interface Component {
  readonly schema: typeof COMPONENT_SCHEMA;
  readonly definition: SubgraphDefinition;
  /** The definitions its nodes use (nested subgraphs), by id. */
  readonly subgraphs?: Readonly<Record<string, SubgraphDefinition>>;
}

/** The component file for one of the workflow's definitions, nested definitions included. */
export function componentOf(store: Store, definitionId: string): Component {
  const definitions = store.document.subgraphs ?? {};
  const definition = definitions[definitionId];
  if (definition === undefined) throw new Error(`this workflow has no subgraph "${definitionId}"`);
  const nested: Record<string, SubgraphDefinition> = {};
  const visit = (current: SubgraphDefinition): void => {
    for (const node of Object.values(current.nodes)) {
      const id = subgraphIdOf(node.type);
      const inner = id === undefined ? undefined : definitions[id];
      if (id === undefined || inner === undefined || id in nested || id === definitionId) continue;
      nested[id] = inner;
      visit(inner);
    }
  };
  visit(definition);
  return { schema: COMPONENT_SCHEMA, definition, ...(Object.keys(nested).length > 0 ? { subgraphs: nested } : {}) };
}

/**
 * Adds an instance of a component at `pos`: its definition (and nested ones) join the
 * workflow's under the component's name as id, replacing an older revision of the same id;
 * returns the instance's id.
 */
export function addComponent(store: Store, name: string, component: Component, pos: Vec2): string {
  const document = toWorkflow(store);
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "") || "component";
  const instanceId = uniqueId(store, slug);
  const node: WorkflowNode = { type: instanceType(slug), inputs: {}, ui: { pos: [Math.round(pos[0]), Math.round(pos[1])] } };
  const subgraphs = { ...document.subgraphs, ...component.subgraphs, [slug]: component.definition };
  replaceDocument(store, { ...document, version: 3, nodes: { ...document.nodes, [instanceId]: node }, subgraphs }, `Add ${component.definition.name}`);
  return instanceId;
}
