/**
 * Subgraphs on workflow documents: make one from a selection, inline one back, and flatten
 * a document for running, exactly as the backend does (backend/latentloom/graph/subgraphs.py;
 * both are tested against tests/fixtures/subgraphs/).
 *
 * A definition is stored once under `subgraphs[id]`; an instance is a node of type
 * `subgraph:<id>` whose inputs are the definition's inputs. Making a subgraph from selected
 * nodes turns every link crossing the selection boundary into a subgraph input (one per
 * outside source, named after the first input it feeds) or output (one per inside source
 * used outside, named after that output); names are made unique with `_2`, `_3`... The
 * inner nodes keep their ids, inputs and `ui`, so inlining the instance again gives back the
 * document the selection came from. Flattening namespaces inner ids by the instance id
 * (`render:sampler`), so the graph that runs has no subgraphs left.
 *
 * Everything here is a pure function of documents; the editor applies the result to its
 * store as one transaction (subgraph-edit.ts), so undo and sync see an ordinary diff.
 */

import {
  isWorkflowLink,
  type SubgraphDefinition,
  type SubgraphInput,
  type SubgraphOutput,
  type WorkflowDocument,
  type WorkflowInput,
  type WorkflowLink,
  type WorkflowNode,
} from "./workflow-document";

export const SUBGRAPH_PREFIX = "subgraph:";
export const SUBGRAPH_SEPARATOR = ":";

type Nodes = Readonly<Record<string, WorkflowNode>>;
type Definitions = Readonly<Record<string, SubgraphDefinition>>;

/** The definition id an instance type names, or undefined for an ordinary node type. */
export function subgraphIdOf(type: string): string | undefined {
  return type.startsWith(SUBGRAPH_PREFIX) ? type.slice(SUBGRAPH_PREFIX.length) : undefined;
}

export function instanceType(definitionId: string): string {
  return `${SUBGRAPH_PREFIX}${definitionId}`;
}

export class SubgraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubgraphError";
  }
}

export interface MakeSubgraphOptions {
  readonly definitionId: string;
  readonly instanceId: string;
  readonly name: string;
  /** The type an output carries (from the catalog), for the subgraph's socket types. */
  readonly typeOf: (source: WorkflowLink) => string;
}

/** The document with `selected` nodes replaced by one instance of a new subgraph. */
export function makeSubgraph(document: WorkflowDocument, selected: readonly string[], options: MakeSubgraphOptions): WorkflowDocument {
  const chosen = new Set(selected.filter((id) => id in document.nodes));
  if (chosen.size === 0) throw new SubgraphError("select at least one node to make a subgraph from");
  const { definitionId, instanceId } = options;
  if (document.subgraphs?.[definitionId] !== undefined) throw new SubgraphError(`a subgraph "${definitionId}" already exists`);
  if (instanceId in document.nodes && !chosen.has(instanceId)) throw new SubgraphError(`node id "${instanceId}" is taken`);
  const order = Object.keys(document.nodes).filter((id) => chosen.has(id));
  const inputs: { name: string; type: string; targets: { node: string; input: string }[] }[] = [];
  const inputBySource = new Map<string, (typeof inputs)[number]>();
  const inner: Record<string, WorkflowNode> = {};
  for (const id of order) {
    const node = document.nodes[id] as WorkflowNode;
    const kept: Record<string, WorkflowInput> = {};
    for (const [name, value] of Object.entries(node.inputs)) {
      if (!isWorkflowLink(value) || chosen.has(value.node)) {
        kept[name] = value;
        continue;
      }
      const key = sourceKey(value);
      let entry = inputBySource.get(key);
      if (entry === undefined) {
        entry = { name: uniqueName(name, inputs), type: options.typeOf(value), targets: [] };
        inputs.push(entry);
        inputBySource.set(key, entry);
      }
      entry.targets.push({ node: id, input: name });
    }
    inner[id] = { ...node, inputs: kept };
  }
  const outputs: SubgraphOutput[] = [];
  const outputBySource = new Map<string, SubgraphOutput>();
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, node] of Object.entries(document.nodes)) {
    if (id === order[0]) nodes[instanceId] = instanceNode(document.nodes[id] as WorkflowNode, definitionId, inputs, inputBySource);
    if (chosen.has(id)) continue;
    const rewired: Record<string, WorkflowInput> = {};
    for (const [name, value] of Object.entries(node.inputs)) {
      if (!isWorkflowLink(value) || !chosen.has(value.node)) {
        rewired[name] = value;
        continue;
      }
      const key = sourceKey(value);
      let output = outputBySource.get(key);
      if (output === undefined) {
        output = { name: uniqueName(value.output, outputs), type: options.typeOf(value), node: value.node, output: value.output };
        outputs.push(output);
        outputBySource.set(key, output);
      }
      rewired[name] = { node: instanceId, output: output.name };
    }
    nodes[id] = { ...node, inputs: rewired };
  }
  const definition: SubgraphDefinition = { name: options.name, revision: 1, inputs, outputs, nodes: inner };
  return { ...document, version: 3, nodes, subgraphs: { ...document.subgraphs, [definitionId]: definition } };
}

function instanceNode(
  first: WorkflowNode,
  definitionId: string,
  inputs: readonly SubgraphInput[],
  bySource: ReadonlyMap<string, SubgraphInput>,
): WorkflowNode {
  const values: Record<string, WorkflowInput> = {};
  for (const [key, entry] of bySource) {
    const [node, output] = JSON.parse(key) as [string, string];
    values[entry.name] = { node, output };
  }
  const ordered = Object.fromEntries(inputs.map((input) => [input.name, values[input.name] as WorkflowInput]));
  const pos = first.ui?.["pos"];
  return { type: instanceType(definitionId), inputs: ordered, ui: pos === undefined ? {} : { pos } };
}

function sourceKey(link: WorkflowLink): string {
  return JSON.stringify([link.node, link.output]);
}

function uniqueName(base: string, taken: readonly { name: string }[]): string {
  let name = base;
  for (let n = 2; taken.some((entry) => entry.name === name); n += 1) name = `${base}_${n}`;
  return name;
}

/**
 * The document with one instance replaced by its definition's nodes, wired as the instance
 * was. Inner ids are kept where free, else namespaced (`instance:inner`); the definition
 * stays (other instances, the component library), unless `dropUnused` and nothing uses it.
 */
export function inlineSubgraph(document: WorkflowDocument, instanceId: string, dropUnused = true): WorkflowDocument {
  const instance = document.nodes[instanceId];
  const definitionId = instance === undefined ? undefined : subgraphIdOf(instance.type);
  const definition = definitionId === undefined ? undefined : document.subgraphs?.[definitionId];
  if (instance === undefined || definitionId === undefined || definition === undefined) {
    throw new SubgraphError(`node "${instanceId}" is not a subgraph instance this document defines`);
  }
  const others = new Set(Object.keys(document.nodes).filter((id) => id !== instanceId));
  const rename = new Map(Object.keys(definition.nodes).map((id) => [id, others.has(id) ? `${instanceId}${SUBGRAPH_SEPARATOR}${id}` : id]));
  const local = (id: string): string => rename.get(id) ?? id;
  const expanded = expandLevel(definition, instance, local, (link) => link);
  const outputs = new Map(definition.outputs.map((output) => [output.name, { node: local(output.node), output: output.output }]));
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, node] of Object.entries(document.nodes)) {
    if (id === instanceId) {
      Object.assign(nodes, expanded);
      continue;
    }
    const inputs = mapLinks(node.inputs, (link) => (link.node === instanceId ? (outputs.get(link.output) ?? link) : link));
    nodes[id] = { ...node, inputs };
  }
  const stillUsed = Object.values(nodes).some((node) => node.type === instance.type) || usedByDefinitions(document.subgraphs ?? {}, instance.type);
  const subgraphs = Object.fromEntries(Object.entries(document.subgraphs ?? {}).filter(([id]) => id !== definitionId || stillUsed || !dropUnused));
  const rest = { ...document, nodes };
  if (Object.keys(subgraphs).length > 0) return { ...rest, subgraphs };
  const { subgraphs: _dropped, ...plain } = rest;
  return { ...plain, version: 2 };
}

function usedByDefinitions(definitions: Definitions, type: string): boolean {
  return Object.values(definitions).some((definition) => Object.values(definition.nodes).some((node) => node.type === type));
}

/**
 * One level of an instance: the definition's nodes with ids through `local`, inner links
 * through `local` too, and the instance's input values (already in the caller's ids, so
 * passed through `outer`) on their targets. The instance's mute/bypass reaches inner nodes
 * that run.
 */
function expandLevel(
  definition: SubgraphDefinition,
  instance: WorkflowNode,
  local: (id: string) => string,
  outer: (link: WorkflowLink) => WorkflowLink,
): Record<string, WorkflowNode> {
  const nodes: Record<string, WorkflowNode> = {};
  for (const [id, node] of Object.entries(definition.nodes)) {
    const inputs: Record<string, WorkflowInput> = mapLinks(node.inputs, (link) => ({ node: local(link.node), output: link.output }));
    for (const input of definition.inputs) {
      const value = instance.inputs[input.name];
      if (value === undefined) continue;
      for (const target of input.targets) if (target.node === id) inputs[target.input] = isWorkflowLink(value) ? outer(value) : value;
    }
    const mode = node.mode ?? instance.mode;
    const { mode: _mode, ...rest } = node;
    nodes[local(id)] = { ...rest, inputs, ...(mode === undefined || mode === "run" ? {} : { mode }) };
  }
  return nodes;
}

function mapLinks(inputs: Readonly<Record<string, WorkflowInput>>, change: (link: WorkflowLink) => WorkflowLink): Record<string, WorkflowInput> {
  return Object.fromEntries(Object.entries(inputs).map(([name, value]) => [name, isWorkflowLink(value) ? change(value) : value]));
}

/**
 * The document the executor runs: every instance, nested ones too, replaced by its inner
 * nodes namespaced by the instance's id path (`outer:inner:node`). Unknown definitions and
 * definitions that contain themselves are refused, naming them.
 */
export function flattenSubgraphs(document: WorkflowDocument): WorkflowDocument {
  const definitions = document.subgraphs ?? {};
  if (Object.keys(definitions).length === 0) return document;
  const flat: Record<string, WorkflowNode> = {};
  const aliases = new Map<string, WorkflowLink>();
  flattenLevel(document.nodes, "", new Map(), undefined, definitions, [], flat, aliases);
  const resolve = (link: WorkflowLink): WorkflowLink => {
    let current = link;
    for (let hops = 0; aliases.has(sourceKey(current)); hops += 1) {
      if (hops > aliases.size) throw new SubgraphError(`subgraph outputs loop at ${current.node}`);
      current = aliases.get(sourceKey(current)) as WorkflowLink;
    }
    return current;
  };
  const nodes = Object.fromEntries(Object.entries(flat).map(([id, node]) => [id, { ...node, inputs: mapLinks(node.inputs, resolve) }]));
  const { subgraphs: _dropped, ...rest } = document;
  return { ...rest, version: 2, nodes };
}

/**
 * Adds one level's nodes (ids and links local to it) to `flat` under `prefix`. `injected`
 * holds values already in flat ids, from the instance this level belongs to, keyed by
 * `[inner node, input]`. A link to an instance's output is written against the instance's
 * flat id and resolved through `aliases` once every level is expanded.
 */
function flattenLevel(
  nodes: Nodes,
  prefix: string,
  injected: ReadonlyMap<string, WorkflowInput>,
  mode: WorkflowNode["mode"],
  definitions: Definitions,
  stack: readonly string[],
  flat: Record<string, WorkflowNode>,
  aliases: Map<string, WorkflowLink>,
): void {
  for (const [id, node] of Object.entries(nodes)) {
    const flatId = prefix + id;
    const inputs = mapLinks(node.inputs, (link) => ({ node: prefix + link.node, output: link.output }));
    for (const [key, value] of injected) {
      const [target, name] = JSON.parse(key) as [string, string];
      if (target === id) inputs[name] = value;
    }
    const nodeMode = node.mode === undefined || node.mode === "run" ? mode : node.mode;
    const definitionId = subgraphIdOf(node.type);
    if (definitionId === undefined) {
      const { mode: _mode, ...rest } = node;
      flat[flatId] = { ...rest, inputs, ...(nodeMode === undefined || nodeMode === "run" ? {} : { mode: nodeMode }) };
      continue;
    }
    const definition = definitions[definitionId];
    if (definition === undefined) throw new SubgraphError(`node "${flatId}" names subgraph "${definitionId}", which the workflow does not define`);
    if (stack.includes(definitionId)) throw new SubgraphError(`subgraphs ${[...stack, definitionId].join(" -> ")} contain each other`);
    const inner = flatId + SUBGRAPH_SEPARATOR;
    const innerInjected = new Map<string, WorkflowInput>();
    for (const input of definition.inputs) {
      const value = inputs[input.name];
      if (value === undefined) continue;
      for (const target of input.targets) innerInjected.set(JSON.stringify([target.node, target.input]), value);
    }
    for (const output of definition.outputs) aliases.set(sourceKey({ node: flatId, output: output.name }), { node: inner + output.node, output: output.output });
    flattenLevel(definition.nodes, inner, innerInjected, nodeMode, definitions, [...stack, definitionId], flat, aliases);
  }
}

/**
 * The node the editor shows for a flattened id: `flatId` itself if the graph has it, else
 * the longest namespace prefix it has (the instance an inner node runs in), else `flatId`.
 */
export function shownNode(has: (id: string) => boolean, flatId: string): string {
  if (has(flatId)) return flatId;
  const parts = flatId.split(SUBGRAPH_SEPARATOR);
  for (let length = parts.length - 1; length >= 1; length -= 1) {
    const prefix = parts.slice(0, length).join(SUBGRAPH_SEPARATOR);
    if (has(prefix)) return prefix;
  }
  return flatId;
}
