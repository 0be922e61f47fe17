/**
 * The workflow file format (version 3: subgraphs) as TypeScript types, and the gatekeeper that turns
 * an unknown parsed JSON value into one. It mirrors the backend's pydantic model
 * (backend/latentloom/graph/workflow.py): the same keys, the same "migrate forward or fail
 * with the reason" rule and the same messages for a wrong schema or version, so a file is
 * judged alike on both sides. All structural problems are collected and reported together;
 * nothing is half-loaded.
 */

import { isLiteral } from "./catalog";
import { describeValue, isJson, isJsonObject, isPlainObject, type JsonObject } from "./json";
import type { LiteralValue } from "./records";

export const WORKFLOW_SCHEMA = "latentloom/workflow";
export const WORKFLOW_VERSION = 3;
/**
 * Version 3 added subgraphs; a document without any is still written as version 2 (as the
 * backend writes it), so files that use no subgraph stay readable by older builds.
 */
export const PLAIN_WORKFLOW_VERSION = 2;

/** An input fed by another node's output. */
export interface WorkflowLink {
  readonly node: string;
  readonly output: string;
}

export type WorkflowInput = LiteralValue | WorkflowLink;

/** run: as usual; mute: it and what only it feeds don't run; bypass: inputs pass through. */
export type NodeMode = "run" | "mute" | "bypass";
export const NODE_MODES: readonly NodeMode[] = ["run", "mute", "bypass"];

export interface WorkflowNode {
  readonly type: string;
  readonly title?: string;
  readonly inputs: Readonly<Record<string, WorkflowInput>>;
  /** Absent means "run", as the backend writes it. */
  readonly mode?: NodeMode;
  readonly ui?: JsonObject;
}

/** An inner node's input that a subgraph input feeds. */
export interface SubgraphTarget {
  readonly node: string;
  readonly input: string;
}

export interface SubgraphInput {
  readonly name: string;
  readonly type: string;
  readonly targets: readonly SubgraphTarget[];
}

/** A subgraph output: the inner node output it exposes. */
export interface SubgraphOutput {
  readonly name: string;
  readonly type: string;
  readonly node: string;
  readonly output: string;
}

/** A subgraph stored once under `subgraphs`; instances are nodes of type `subgraph:<id>`. */
export interface SubgraphDefinition {
  readonly name: string;
  /** Bumped on each edit; a component library keeps the latest. Absent means 1. */
  readonly revision?: number;
  readonly description?: string;
  readonly inputs: readonly SubgraphInput[];
  readonly outputs: readonly SubgraphOutput[];
  readonly nodes: Readonly<Record<string, WorkflowNode>>;
  readonly ui?: JsonObject;
}

export interface WorkflowDocument {
  readonly schema: typeof WORKFLOW_SCHEMA;
  readonly version: typeof WORKFLOW_VERSION | typeof PLAIN_WORKFLOW_VERSION;
  readonly nodes: Readonly<Record<string, WorkflowNode>>;
  readonly subgraphs?: Readonly<Record<string, SubgraphDefinition>>;
  readonly groups?: readonly JsonObject[];
  readonly meta?: JsonObject;
}

export class WorkflowFormatError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
    this.name = "WorkflowFormatError";
  }

  static fromProblems(problems: readonly string[]): WorkflowFormatError {
    return new WorkflowFormatError(`invalid workflow document:\n  ${problems.join("\n  ")}`, problems);
  }
}

/** version -> function turning a document of that version into one of the next version. */
export const MIGRATIONS: ReadonlyMap<number, (document: JsonObject) => JsonObject> = new Map([
  // Version 2 added node modes; every version-1 node runs, which is the default.
  [1, (document: JsonObject): JsonObject => ({ ...document, version: 2 })],
  // Version 3 added subgraph definitions; a version-2 document has none.
  [2, (document: JsonObject): JsonObject => ({ ...document, version: 3 })],
]);

const TOP_LEVEL_KEYS = ["schema", "version", "nodes", "subgraphs", "groups", "meta"];
const NODE_KEYS = ["type", "inputs", "mode", "title", "ui"];

export function isWorkflowLink(value: WorkflowInput): value is WorkflowLink {
  return isPlainObject(value);
}

export function parseWorkflowDocument(input: unknown): WorkflowDocument {
  if (!isPlainObject(input) || !isJson(input)) {
    throw new WorkflowFormatError(`a workflow is a JSON object, got ${jsonTypeName(input)}`);
  }
  if (input["schema"] !== WORKFLOW_SCHEMA) {
    throw new WorkflowFormatError(
      `not a Latentloom workflow: expected "schema": "${WORKFLOW_SCHEMA}", got ${describeValue(input["schema"])}`,
    );
  }
  const document = migrate(input);
  const problems: string[] = [];
  for (const key of Object.keys(document)) {
    if (!TOP_LEVEL_KEYS.includes(key)) problems.push(`${key}: unknown key (a workflow has ${TOP_LEVEL_KEYS.join(", ")})`);
  }
  const nodes = document["nodes"];
  const parsedNodes: [string, WorkflowNode][] = [];
  if (!isPlainObject(nodes)) problems.push(`nodes: expected an object of nodes by id, got ${describeValue(nodes)}`);
  else {
    for (const [id, node] of Object.entries(nodes)) {
      const parsed = parseNode(id, node, problems);
      if (parsed !== undefined) parsedNodes.push([id, parsed]);
    }
  }
  const groups = document["groups"];
  let groupList: readonly JsonObject[] | undefined;
  if (groups !== undefined) {
    if (Array.isArray(groups) && groups.every(isJsonObject)) groupList = groups;
    else problems.push(`groups: expected a list of objects, got ${describeValue(groups)}`);
  }
  const meta = document["meta"];
  if (meta !== undefined && !isPlainObject(meta)) problems.push(`meta: expected an object, got ${describeValue(meta)}`);
  const subgraphs = parseSubgraphs(document["subgraphs"], problems);
  if (problems.length > 0) throw WorkflowFormatError.fromProblems(problems);
  return {
    schema: WORKFLOW_SCHEMA,
    version: subgraphs === undefined ? PLAIN_WORKFLOW_VERSION : WORKFLOW_VERSION,
    nodes: Object.fromEntries(parsedNodes),
    ...(subgraphs === undefined ? {} : { subgraphs }),
    ...(groupList === undefined ? {} : { groups: groupList }),
    ...(isJsonObject(meta) ? { meta } : {}),
  };
}

function migrate(input: JsonObject): JsonObject {
  let document = input;
  let version = document["version"];
  if (typeof version !== "number" || !Number.isInteger(version)) {
    throw new WorkflowFormatError(`"version" must be an integer, got ${describeValue(version)}`);
  }
  if (version > WORKFLOW_VERSION) {
    throw new WorkflowFormatError(
      `workflow version ${version} was written by a newer Latentloom; this one reads versions up to ${WORKFLOW_VERSION}`,
    );
  }
  while (version < WORKFLOW_VERSION) {
    const step = MIGRATIONS.get(version);
    if (step === undefined) throw new WorkflowFormatError(`workflow version ${version} is not supported (no migration)`);
    document = step(document);
    version += 1;
  }
  return document;
}

function parseNode(id: string, node: unknown, problems: string[]): WorkflowNode | undefined {
  const at = `nodes.${id}`;
  const before = problems.length;
  if (id === "") problems.push(`nodes: a node id must not be empty`);
  if (!isPlainObject(node)) {
    problems.push(`${at}: expected an object with "type" and "inputs", got ${describeValue(node)}`);
    return undefined;
  }
  for (const key of Object.keys(node)) {
    if (!NODE_KEYS.includes(key)) problems.push(`${at}.${key}: unknown key (a node has ${NODE_KEYS.join(", ")})`);
  }
  const { type, title, ui, mode } = node;
  const rawInputs = node["inputs"] ?? {};
  if (typeof type !== "string" || type === "") {
    problems.push(`${at}.type: expected a catalog id such as "sampling.ksampler", got ${describeValue(type)}`);
  }
  // The backend writes no title as an absent key but accepts null; both mean "no title".
  if (title !== undefined && title !== null && typeof title !== "string") {
    problems.push(`${at}.title: expected a string, got ${describeValue(title)}`);
  }
  if (ui !== undefined && !isPlainObject(ui)) problems.push(`${at}.ui: expected an object, got ${describeValue(ui)}`);
  if (mode !== undefined && !NODE_MODES.includes(mode as NodeMode)) {
    problems.push(`${at}.mode: expected one of ${NODE_MODES.join(", ")}, got ${describeValue(mode)}`);
  }
  const inputs: [string, WorkflowInput][] = [];
  if (!isPlainObject(rawInputs)) problems.push(`${at}.inputs: expected an object, got ${describeValue(rawInputs)}`);
  else {
    for (const [name, value] of Object.entries(rawInputs)) {
      const parsed = parseInputValue(value);
      if (parsed === undefined) {
        problems.push(
          `${at}.inputs.${name}: expected a number, string, boolean, a list of those, ` +
            `or a link {"node": id, "output": name}; got ${describeValue(value)}`,
        );
      } else inputs.push([name, parsed]);
    }
  }
  if (problems.length > before || typeof type !== "string") return undefined;
  return {
    type,
    inputs: Object.fromEntries(inputs),
    ...(mode === "mute" || mode === "bypass" ? { mode } : {}),
    ...(typeof title === "string" ? { title } : {}),
    ...(isPlainObject(ui) && isJson(ui) ? { ui } : {}),
  };
}

function parseInputValue(value: unknown): WorkflowInput | undefined {
  if (isLiteral(value)) return value;
  if (!isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  const { node, output } = value;
  const isLink =
    keys.length === 2 && typeof node === "string" && node !== "" && typeof output === "string" && output !== "";
  return isLink ? { node, output } : undefined;
}

function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

// ---- subgraphs (version 3) -----------------------------------------------------------------

const SUBGRAPH_KEYS = ["name", "revision", "description", "inputs", "outputs", "nodes", "ui"];

/** The definitions under `subgraphs`, or undefined when there are none (a version-2 document). */
function parseSubgraphs(raw: unknown, problems: string[]): Record<string, SubgraphDefinition> | undefined {
  if (raw === undefined) return undefined;
  if (!isPlainObject(raw)) {
    problems.push(`subgraphs: expected an object of subgraph definitions by id, got ${describeValue(raw)}`);
    return undefined;
  }
  const definitions: [string, SubgraphDefinition][] = [];
  for (const [id, body] of Object.entries(raw)) {
    const definition = parseSubgraph(`subgraphs.${id}`, body, problems);
    if (definition !== undefined) definitions.push([id, definition]);
  }
  return definitions.length === 0 ? undefined : Object.fromEntries(definitions);
}

function parseSubgraph(at: string, body: unknown, problems: string[]): SubgraphDefinition | undefined {
  if (!isPlainObject(body)) {
    problems.push(`${at}: expected {"name", "inputs", "outputs", "nodes"}, got ${describeValue(body)}`);
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(body)) {
    if (!SUBGRAPH_KEYS.includes(key)) problems.push(`${at}.${key}: unknown key (a subgraph has ${SUBGRAPH_KEYS.join(", ")})`);
  }
  const { name, revision, description, ui } = body;
  if (typeof name !== "string" || name === "") problems.push(`${at}.name: expected a non-empty string, got ${describeValue(name)}`);
  if (revision !== undefined && !(typeof revision === "number" && Number.isInteger(revision) && revision >= 1)) {
    problems.push(`${at}.revision: expected an integer from 1, got ${describeValue(revision)}`);
  }
  if (description !== undefined && typeof description !== "string") problems.push(`${at}.description: expected a string, got ${describeValue(description)}`);
  if (ui !== undefined && !isPlainObject(ui)) problems.push(`${at}.ui: expected an object, got ${describeValue(ui)}`);
  const inputs = parseList(body["inputs"], `${at}.inputs`, problems, parseSubgraphInput);
  const outputs = parseList(body["outputs"], `${at}.outputs`, problems, parseSubgraphOutput);
  const nodes: [string, WorkflowNode][] = [];
  const rawNodes = body["nodes"];
  if (!isPlainObject(rawNodes)) problems.push(`${at}.nodes: expected an object of nodes by id, got ${describeValue(rawNodes)}`);
  else {
    for (const [id, node] of Object.entries(rawNodes)) {
      const inner: string[] = [];
      const parsed = parseNode(id, node, inner);
      problems.push(...inner.map((problem) => `${at}.${problem}`));
      if (parsed !== undefined) nodes.push([id, parsed]);
    }
  }
  if (problems.length > before || typeof name !== "string") return undefined;
  return {
    name,
    ...(typeof revision === "number" ? { revision } : {}),
    ...(typeof description === "string" ? { description } : {}),
    inputs,
    outputs,
    nodes: Object.fromEntries(nodes),
    ...(isPlainObject(ui) && isJson(ui) ? { ui } : {}),
  };
}

function parseList<T>(raw: unknown, at: string, problems: string[], item: (value: unknown, at: string, problems: string[]) => T | undefined): T[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    problems.push(`${at}: expected a list, got ${describeValue(raw)}`);
    return [];
  }
  const list: readonly unknown[] = raw;
  return list.flatMap((value, index) => {
    const parsed = item(value, `${at}[${index}]`, problems);
    return parsed === undefined ? [] : [parsed];
  });
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}

function parseSubgraphInput(value: unknown, at: string, problems: string[]): SubgraphInput | undefined {
  if (!isPlainObject(value) || !isName(value["name"]) || !isName(value["type"])) {
    problems.push(`${at}: expected {"name", "type", "targets": [{"node", "input"}]}, got ${describeValue(value)}`);
    return undefined;
  }
  const targets = parseList(value["targets"], `${at}.targets`, problems, (target, where, list) => {
    if (isPlainObject(target) && isName(target["node"]) && isName(target["input"])) return { node: target["node"], input: target["input"] };
    list.push(`${where}: expected {"node", "input"}, got ${describeValue(target)}`);
    return undefined;
  });
  return { name: value["name"], type: value["type"], targets };
}

function parseSubgraphOutput(value: unknown, at: string, problems: string[]): SubgraphOutput | undefined {
  if (isPlainObject(value) && isName(value["name"]) && isName(value["type"]) && isName(value["node"]) && isName(value["output"])) {
    return { name: value["name"], type: value["type"], node: value["node"], output: value["output"] };
  }
  problems.push(`${at}: expected {"name", "type", "node", "output"}, got ${describeValue(value)}`);
  return undefined;
}
