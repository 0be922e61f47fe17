/**
 * Workflow document <-> store records.
 *
 * The executable part maps one to one: literal inputs stay on the node record, link inputs
 * become link records, unknown node types and inputs are carried through untouched. Editor
 * state the file format has no slot for is kept where the backend ignores it:
 *   - reroutes: `meta.reroutes = [{id, pos, type?, input?}]`, `input` being the link into the
 *     reroute; a node input drawn through a reroute says so in `ui.reroutes[input]`, while its
 *     inline link still names the real source, so the backend runs it unchanged;
 *   - `ui` keys and group fields this editor does not know are kept verbatim.
 * `toWorkflow(fromWorkflow(x))` therefore equals `x` for every example workflow. Two things
 * are normalised: `"collapsed": false` is dropped (it is the default), and a node without a
 * saved position gets one on the example files' grid.
 */

import type { Catalog } from "./catalog";
import { describeValue, isJsonObject, type Json, type JsonObject } from "./json";
import { gridPosition } from "./layout";
import {
  DOCUMENT_ID,
  type DocumentRecord,
  REROUTE_INPUT,
  REROUTE_OUTPUT,
  linkIdFor,
  type GroupRecord,
  type LinkRecord,
  type LiteralValue,
  type NodeRecord,
  type OutputRef,
  type Rect,
  type RerouteRecord,
  type Vec2,
} from "./records";
import { Store, type StoreReader } from "./store";
import { defineSubgraphs } from "./subgraph-catalog";
import {
  PLAIN_WORKFLOW_VERSION,
  WORKFLOW_SCHEMA,
  WORKFLOW_VERSION,
  WorkflowFormatError,
  isWorkflowLink,
  parseWorkflowDocument,
  type WorkflowDocument,
  type WorkflowInput,
  type WorkflowNode,
} from "./workflow-document";

/** The records a workflow document describes, ready for `new Store(catalog, records)`. */
export interface WorkflowRecords {
  readonly node: readonly NodeRecord[];
  readonly link: readonly LinkRecord[];
  readonly group: readonly GroupRecord[];
  readonly reroute: readonly RerouteRecord[];
  readonly document: readonly [DocumentRecord];
}

/** Loads a parsed workflow file into a new store; throws WorkflowFormatError naming every problem. */
export function fromWorkflow(document: unknown, catalog: Catalog): Store {
  const records = recordsFromWorkflow(document);
  // Instances of the document's subgraphs get their sockets from these specs.
  defineSubgraphs(catalog, records.document[0].subgraphs);
  return new Store(catalog, records);
}

export function toWorkflow(store: StoreReader): WorkflowDocument {
  const incoming = new Map<string, LinkRecord[]>();
  for (const link of store.list("link")) {
    const list = incoming.get(link.to.node) ?? [];
    list.push(link);
    incoming.set(link.to.node, list);
  }
  const nodes: [string, WorkflowNode][] = [];
  for (const node of store.list("node")) nodes.push([node.id, nodeToWorkflow(store, node, incoming.get(node.id) ?? [])]);
  const reroutes = [...store.list("reroute")].map((reroute) => rerouteToJson(reroute, incoming.get(reroute.id)?.[0]));
  const meta: JsonObject = { ...store.document.meta, ...(reroutes.length > 0 ? { reroutes } : {}) };
  const subgraphs = store.document.subgraphs;
  const hasSubgraphs = subgraphs !== undefined && Object.keys(subgraphs).length > 0;
  return {
    schema: WORKFLOW_SCHEMA,
    version: hasSubgraphs ? WORKFLOW_VERSION : PLAIN_WORKFLOW_VERSION,
    nodes: Object.fromEntries(nodes),
    ...(hasSubgraphs ? { subgraphs } : {}),
    groups: [...store.list("group")].map(groupToJson),
    meta,
  };
}

export function recordsFromWorkflow(input: unknown): WorkflowRecords {
  const document = parseWorkflowDocument(input);
  const problems: string[] = [];
  const { reroutes, rerouteLinks, meta } = readReroutes(document.meta ?? {}, problems);
  const rerouteById = new Map(reroutes.map((entry) => [entry.record.id, entry]));
  const nodes: NodeRecord[] = [];
  const links: LinkRecord[] = [...rerouteLinks];
  Object.entries(document.nodes).forEach(([id, node], index) => {
    if (rerouteById.has(id)) problems.push(`nodes.${id}: the id is also used by a reroute in meta.reroutes`);
    const read = readNode(id, node, index, rerouteById, problems);
    nodes.push(read.node);
    links.push(...read.links);
  });
  const groups = (document.groups ?? []).map((group, index) => readGroup(group, index, problems));
  // One namespace: deleting "x" must not also delete an unrelated group called "x".
  const taken = new Set([...nodes.map((node) => node.id), ...rerouteById.keys()]);
  groups.forEach((group, index) => {
    if (group === undefined) return;
    if (taken.has(group.id)) problems.push(`groups[${index}].id: "${group.id}" is also the id of a node or reroute`);
    taken.add(group.id);
  });
  if (problems.length > 0) throw WorkflowFormatError.fromProblems(problems);
  return {
    node: nodes,
    link: links,
    group: groups.filter((group): group is GroupRecord => group !== undefined),
    reroute: reroutes.map((entry) => entry.record),
    document: [{ id: DOCUMENT_ID, meta, ...(document.subgraphs === undefined ? {} : { subgraphs: document.subgraphs }) }],
  };
}

// ---- nodes ------------------------------------------------------------------------------

const KNOWN_UI_KEYS = new Set(["pos", "size", "collapsed", "reroutes"]);

interface ReadReroute {
  readonly record: RerouteRecord;
  readonly input: OutputRef | undefined;
}

function readNode(
  id: string,
  node: WorkflowNode,
  index: number,
  reroutes: ReadonlyMap<string, ReadReroute>,
  problems: string[],
): { node: NodeRecord; links: LinkRecord[] } {
  const at = `nodes.${id}.ui`;
  const ui = node.ui ?? {};
  const pos = ui["pos"] === undefined ? gridPosition(index) : readVec2(ui["pos"], `${at}.pos`, problems);
  const size = ui["size"] === undefined ? undefined : readVec2(ui["size"], `${at}.size`, problems);
  const collapsed = ui["collapsed"] ?? false;
  if (typeof collapsed !== "boolean") problems.push(`${at}.collapsed: expected true or false, got ${describeValue(collapsed)}`);
  const via = readVia(ui["reroutes"], `${at}.reroutes`, problems);
  const extraUi = Object.fromEntries(Object.entries(ui).filter(([key]) => !KNOWN_UI_KEYS.has(key)));
  const inputs: [string, LiteralValue][] = [];
  const links: LinkRecord[] = [];
  for (const [name, value] of Object.entries(node.inputs)) {
    if (via.has(name)) continue;
    if (isWorkflowLink(value)) links.push(makeLink(value, { node: id, input: name }));
    else inputs.push([name, value]);
  }
  for (const [name, rerouteId] of via) {
    const reroute = reroutes.get(rerouteId);
    if (reroute === undefined) {
      problems.push(`${at}.reroutes.${name}: names reroute "${rerouteId}", which meta.reroutes does not have`);
      continue;
    }
    checkRoute(id, name, node.inputs[name], resolveOrigin(rerouteId, reroutes, problems), problems);
    links.push(makeLink({ node: rerouteId, output: REROUTE_OUTPUT }, { node: id, input: name }));
  }
  const record: NodeRecord = {
    id,
    type: node.type,
    pos,
    collapsed: collapsed === true,
    inputs: Object.fromEntries(inputs),
    ...(node.mode === undefined || node.mode === "run" ? {} : { mode: node.mode }),
    ...(node.title === undefined ? {} : { title: node.title }),
    ...(size === undefined ? {} : { size }),
    ...(Object.keys(extraUi).length > 0 ? { extraUi } : {}),
  };
  return { node: record, links };
}

/**
 * A routed input's inline value must be the link the reroute chain leads to (the backend
 * only sees the inline value). A mismatch means the file was edited by hand; we refuse it
 * rather than guess which of the two the author meant.
 */
function checkRoute(
  id: string,
  input: string,
  inline: WorkflowInput | undefined,
  origin: OutputRef | undefined,
  problems: string[],
): void {
  const inlineLink = inline !== undefined && isWorkflowLink(inline) ? inline : undefined;
  if (inline !== undefined && inlineLink === undefined) {
    problems.push(`nodes.${id}.inputs.${input}: has the value ${describeValue(inline)} but ui.reroutes says it is linked`);
    return;
  }
  const same =
    origin === undefined ? inlineLink === undefined : inlineLink?.node === origin.node && inlineLink.output === origin.output;
  if (!same) {
    problems.push(
      `nodes.${id}.inputs.${input}: links to ${describeValue(inlineLink)}, but its reroutes lead to ${describeValue(origin)}`,
    );
  }
}

function nodeToWorkflow(store: StoreReader, node: NodeRecord, incoming: readonly LinkRecord[]): WorkflowNode {
  const inputs: Record<string, WorkflowInput> = {};
  const linked = new Set(incoming.map((link) => link.to.input));
  const spec = store.catalog.get(node.type);
  // Catalog order first keeps saved files stable however the inputs were edited.
  const order = [...(spec?.inputs.map((input) => input.name) ?? []), ...Object.keys(node.inputs)];
  const via: [string, Json][] = [];
  for (const name of order) {
    const value = node.inputs[name];
    if (value !== undefined && !linked.has(name) && !(name in inputs)) inputs[name] = value;
  }
  for (const link of incoming) {
    const name = link.to.input;
    if (!store.has("reroute", link.from.node)) {
      inputs[name] = { node: link.from.node, output: link.from.output };
      continue;
    }
    via.push([name, link.from.node]);
    const origin = originOf(store, link.from.node);
    if (origin !== undefined) inputs[name] = origin;
  }
  const ui: JsonObject = {
    pos: [node.pos[0], node.pos[1]],
    ...(node.size === undefined ? {} : { size: [node.size[0], node.size[1]] }),
    ...(node.collapsed ? { collapsed: true } : {}),
    ...(via.length > 0 ? { reroutes: Object.fromEntries(via) } : {}),
    ...node.extraUi,
  };
  return {
    type: node.type,
    ...(node.title === undefined ? {} : { title: node.title }),
    inputs: sortByOrder(inputs, order),
    ...(node.mode === undefined ? {} : { mode: node.mode }),
    ui,
  };
}

function sortByOrder(inputs: Record<string, WorkflowInput>, order: readonly string[]): Record<string, WorkflowInput> {
  const rank = (name: string): number => {
    const index = order.indexOf(name);
    return index === -1 ? order.length : index;
  };
  return Object.fromEntries(Object.entries(inputs).sort(([a], [b]) => rank(a) - rank(b)));
}

function makeLink(from: OutputRef, to: { node: string; input: string }): LinkRecord {
  return { id: linkIdFor(to), from: { node: from.node, output: from.output }, to };
}

// ---- reroutes ---------------------------------------------------------------------------

function readReroutes(
  meta: JsonObject,
  problems: string[],
): { reroutes: ReadReroute[]; rerouteLinks: LinkRecord[]; meta: JsonObject } {
  const { reroutes: raw, ...rest } = meta;
  if (raw === undefined) return { reroutes: [], rerouteLinks: [], meta: rest };
  if (!Array.isArray(raw)) {
    problems.push(`meta.reroutes: expected a list, got ${describeValue(raw)}`);
    return { reroutes: [], rerouteLinks: [], meta: rest };
  }
  const reroutes: ReadReroute[] = [];
  const rerouteLinks: LinkRecord[] = [];
  const list: readonly Json[] = raw;
  list.forEach((entry, index) => {
    const at = `meta.reroutes[${index}]`;
    if (!isJsonObject(entry) || typeof entry["id"] !== "string" || entry["id"] === "") {
      problems.push(`${at}: expected {"id", "pos", "type"?, "input"?}, got ${describeValue(entry)}`);
      return;
    }
    const id = entry["id"];
    const type = entry["type"];
    if (type !== undefined && typeof type !== "string") problems.push(`${at}.type: expected a string, got ${describeValue(type)}`);
    const input = readLinkRef(entry["input"], `${at}.input`, problems);
    const record: RerouteRecord = {
      id,
      pos: readVec2(entry["pos"], `${at}.pos`, problems),
      ...(typeof type === "string" ? { type } : {}),
    };
    if (reroutes.some((other) => other.record.id === id)) problems.push(`${at}: duplicate reroute id "${id}"`);
    reroutes.push({ record, input });
    if (input !== undefined) rerouteLinks.push(makeLink(input, { node: id, input: REROUTE_INPUT }));
  });
  return { reroutes, rerouteLinks, meta: rest };
}

function rerouteToJson(reroute: RerouteRecord, input: LinkRecord | undefined): JsonObject {
  return {
    id: reroute.id,
    pos: [reroute.pos[0], reroute.pos[1]],
    ...(reroute.type === undefined ? {} : { type: reroute.type }),
    ...(input === undefined ? {} : { input: { node: input.from.node, output: input.from.output } }),
  };
}

/** The node output a chain of reroutes starts from, or undefined if it starts nowhere. */
function resolveOrigin(start: string, reroutes: ReadonlyMap<string, ReadReroute>, problems: string[]): OutputRef | undefined {
  const seen = [start];
  let input = reroutes.get(start)?.input;
  while (input !== undefined && reroutes.has(input.node)) {
    if (seen.includes(input.node)) {
      problems.push(`meta.reroutes: reroutes ${[...seen, input.node].join(" → ")} form a loop`);
      return undefined;
    }
    seen.push(input.node);
    input = reroutes.get(input.node)?.input;
  }
  return input;
}

function originOf(store: StoreReader, rerouteId: string): OutputRef | undefined {
  const seen = new Set<string>();
  let current: string | undefined = rerouteId;
  while (current !== undefined && store.has("reroute", current) && !seen.has(current)) {
    seen.add(current);
    const link: LinkRecord | undefined = store.get("link", linkIdFor({ node: current, input: REROUTE_INPUT }));
    if (link === undefined) return undefined;
    if (!store.has("reroute", link.from.node)) return link.from;
    current = link.from.node;
  }
  return undefined;
}

function readVia(value: Json | undefined, at: string, problems: string[]): Map<string, string> {
  const via = new Map<string, string>();
  if (value === undefined) return via;
  if (!isJsonObject(value)) {
    problems.push(`${at}: expected {input: reroute id}, got ${describeValue(value)}`);
    return via;
  }
  for (const [input, rerouteId] of Object.entries(value)) {
    if (typeof rerouteId === "string") via.set(input, rerouteId);
    else problems.push(`${at}.${input}: expected a reroute id, got ${describeValue(rerouteId)}`);
  }
  return via;
}

function readLinkRef(value: Json | undefined, at: string, problems: string[]): OutputRef | undefined {
  if (value === undefined) return undefined;
  if (isJsonObject(value) && typeof value["node"] === "string" && typeof value["output"] === "string") {
    return { node: value["node"], output: value["output"] };
  }
  problems.push(`${at}: expected {"node": id, "output": name}, got ${describeValue(value)}`);
  return undefined;
}

// ---- groups -----------------------------------------------------------------------------

const KNOWN_GROUP_KEYS = new Set(["id", "title", "rect", "color"]);

function readGroup(group: JsonObject, index: number, problems: string[]): GroupRecord | undefined {
  const at = `groups[${index}]`;
  const { id, title, rect, color } = group;
  const before = problems.length;
  if (id !== undefined && (typeof id !== "string" || id === "")) problems.push(`${at}.id: expected a string, got ${describeValue(id)}`);
  if (typeof title !== "string") problems.push(`${at}.title: expected a string, got ${describeValue(title)}`);
  if (color !== undefined && typeof color !== "string") problems.push(`${at}.color: expected a CSS colour, got ${describeValue(color)}`);
  const box = readRect(rect, `${at}.rect`, problems);
  if (problems.length > before || typeof title !== "string") return undefined;
  const extra = Object.fromEntries(Object.entries(group).filter(([key]) => !KNOWN_GROUP_KEYS.has(key)));
  return {
    // Groups from elsewhere may lack ids; the editor needs one to address them in diffs.
    id: typeof id === "string" ? id : `group_${index + 1}`,
    title,
    rect: box,
    ...(typeof color === "string" ? { color } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

function groupToJson(group: GroupRecord): JsonObject {
  return {
    id: group.id,
    title: group.title,
    rect: [...group.rect],
    ...(group.color === undefined ? {} : { color: group.color }),
    ...group.extra,
  };
}

// ---- shapes -----------------------------------------------------------------------------

function readVec2(value: Json | undefined, at: string, problems: string[]): Vec2 {
  if (Array.isArray(value) && value.length === 2) {
    const [x, y] = value;
    if (typeof x === "number" && typeof y === "number") return [x, y];
  }
  problems.push(`${at}: expected [x, y], got ${describeValue(value)}`);
  return [0, 0];
}

function readRect(value: Json | undefined, at: string, problems: string[]): Rect {
  if (Array.isArray(value) && value.length === 4) {
    const [x, y, width, height] = value;
    if (typeof x === "number" && typeof y === "number" && typeof width === "number" && typeof height === "number") {
      return [x, y, width, height];
    }
  }
  problems.push(`${at}: expected [x, y, width, height], got ${describeValue(value)}`);
  return [0, 0, 0, 0];
}
