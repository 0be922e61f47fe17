/**
 * The workflow file format (version 2) as TypeScript types, and the gatekeeper that turns
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
export const WORKFLOW_VERSION = 2;

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

export interface WorkflowDocument {
  readonly schema: typeof WORKFLOW_SCHEMA;
  readonly version: typeof WORKFLOW_VERSION;
  readonly nodes: Readonly<Record<string, WorkflowNode>>;
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
]);

const TOP_LEVEL_KEYS = ["schema", "version", "nodes", "groups", "meta"];
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
  if (problems.length > 0) throw WorkflowFormatError.fromProblems(problems);
  return {
    schema: WORKFLOW_SCHEMA,
    version: WORKFLOW_VERSION,
    nodes: Object.fromEntries(parsedNodes),
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
