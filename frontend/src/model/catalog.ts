/**
 * The node catalog as the editor sees it: `GET /api/nodes` parsed into typed specs.
 *
 * Field names mirror the wire format (`display_name`, `accepts_list`...) so the types match
 * the server's JSON one to one and no renaming layer can drift. Parsing checks everything
 * and reports every problem at once, naming the node and input, because a malformed catalog
 * would otherwise surface later as an inexplicable canvas bug.
 */

import { describeValue, isPlainObject } from "./json";
import type { LiteralValue, Scalar } from "./records";

export const SOCKET_TYPES = [
  "MODEL",
  "CLIP",
  "VAE",
  "CONDITIONING",
  "LATENT",
  "IMAGE",
  "MASK",
  "SIGMAS",
  "NOISE",
  "SAMPLER",
  "GUIDER",
  "CONTROL_NET",
  "CLIP_VISION",
  "CLIP_VISION_OUTPUT",
  "IPADAPTER",
  "UPSCALE_MODEL",
] as const;
export const WIDGET_TYPES = ["INT", "FLOAT", "STRING", "BOOLEAN", "ENUM"] as const;

export type SocketType = (typeof SOCKET_TYPES)[number];
export type WidgetType = (typeof WIDGET_TYPES)[number];
/** What travels along a link; widget types can travel too (an INT output into a seed). */
export type ValueType = SocketType | WidgetType;

export interface InputSpec {
  readonly name: string;
  readonly type: ValueType;
  readonly kind: "socket" | "widget";
  readonly required: boolean;
  readonly default?: LiteralValue;
  readonly min?: number | bigint; // a bigint only beyond ±2^53 (a 64-bit seed's bounds)
  readonly max?: number | bigint;
  readonly step?: number;
  readonly choices?: readonly string[];
  /** The model folder ENUM choices are listed from (e.g. "checkpoints"). */
  readonly choices_from?: string;
  readonly multiline?: boolean;
  readonly accepts_list?: boolean;
  readonly optional?: boolean;
  readonly tooltip?: string;
}

export interface OutputSpec {
  readonly name: string;
  readonly type: ValueType;
}

export interface NodeSpec {
  readonly id: string;
  readonly display_name: string;
  readonly category: string;
  readonly description: string;
  /** Names users know from other tools (ComfyUI's class names): search matches them too. */
  readonly aliases?: readonly string[];
  readonly version: number;
  readonly inputs: readonly InputSpec[];
  readonly outputs: readonly OutputSpec[];
  readonly output_node: boolean;
  readonly nondeterministic: boolean;
}

export class CatalogError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid node catalog:\n  ${problems.join("\n  ")}`);
    this.name = "CatalogError";
  }
}

/** Specs by id, plus the lookups the model needs for type checks. */
export class Catalog {
  private readonly byId: ReadonlyMap<string, NodeSpec>;

  constructor(readonly specs: readonly NodeSpec[]) {
    this.byId = new Map(specs.map((spec) => [spec.id, spec]));
  }

  get(type: string): NodeSpec | undefined {
    return this.byId.get(type);
  }

  input(type: string, name: string): InputSpec | undefined {
    return this.byId.get(type)?.inputs.find((input) => input.name === name);
  }

  output(type: string, name: string): OutputSpec | undefined {
    return this.byId.get(type)?.outputs.find((output) => output.name === name);
  }
}

/** Accepts the API's `{"nodes": [...]}` or the bare list `latentloom nodes --json` prints. */
export function parseCatalog(json: unknown): Catalog {
  const list = isPlainObject(json) ? json["nodes"] : json;
  if (!Array.isArray(list)) {
    throw new CatalogError([`expected {"nodes": [...]} or a list of node specs, got ${describeValue(json)}`]);
  }
  const problems: string[] = [];
  const specs: NodeSpec[] = [];
  const seen = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const spec = parseSpec(entry, `nodes[${index}]`, problems);
    if (spec === undefined) return;
    if (seen.has(spec.id)) problems.push(`nodes[${index}]: duplicate node id "${spec.id}"`);
    seen.add(spec.id);
    specs.push(spec);
  });
  if (problems.length > 0) throw new CatalogError(problems);
  return new Catalog(specs);
}

/** The values a freshly created node starts with. */
export function widgetDefaults(spec: NodeSpec): Record<string, LiteralValue> {
  const values: Record<string, LiteralValue> = {};
  for (const input of spec.inputs) {
    if (input.kind !== "widget") continue;
    if (input.default !== undefined) values[input.name] = input.default;
    // A dropdown always shows something; with no declared default it shows the first choice,
    // so the record says so too. Number and text widgets without a default stay empty and
    // validation reports them, rather than the editor inventing a value.
    else if (input.type === "ENUM" && input.choices !== undefined && input.choices[0] !== undefined) {
      values[input.name] = input.choices[0];
    }
  }
  return values;
}

function parseSpec(entry: unknown, where: string, problems: string[]): NodeSpec | undefined {
  if (!isPlainObject(entry)) {
    problems.push(`${where}: expected an object, got ${describeValue(entry)}`);
    return undefined;
  }
  const id = entry["id"];
  if (typeof id !== "string" || id === "") {
    problems.push(`${where}.id: expected a non-empty string, got ${describeValue(id)}`);
    return undefined;
  }
  const at = `node "${id}"`;
  const before = problems.length;
  const text = (key: string): string => {
    const value = entry[key];
    if (typeof value === "string") return value;
    problems.push(`${at}: "${key}" must be a string, got ${describeValue(value)}`);
    return "";
  };
  const flag = (key: string): boolean => {
    const value = entry[key];
    if (typeof value === "boolean") return value;
    problems.push(`${at}: "${key}" must be true or false, got ${describeValue(value)}`);
    return false;
  };
  const version = entry["version"];
  if (typeof version !== "number" || !Number.isInteger(version)) {
    problems.push(`${at}: "version" must be an integer, got ${describeValue(version)}`);
  }
  const spec: NodeSpec = {
    id,
    display_name: text("display_name"),
    category: text("category"),
    description: text("description"),
    ...aliases(entry["aliases"], at, problems),
    version: typeof version === "number" ? version : 0,
    inputs: listOf(entry["inputs"], `${at} inputs`, problems, parseInput),
    outputs: listOf(entry["outputs"], `${at} outputs`, problems, parseOutput),
    output_node: flag("output_node"),
    nondeterministic: flag("nondeterministic"),
  };
  return problems.length === before ? spec : undefined;
}

function aliases(value: unknown, at: string, problems: string[]): { aliases?: readonly string[] } {
  if (value === undefined) return {};
  if (Array.isArray(value) && value.every((alias) => typeof alias === "string")) return { aliases: value };
  problems.push(`${at}: "aliases" must be a list of strings, got ${describeValue(value)}`);
  return {};
}

function listOf<T>(
  value: unknown,
  where: string,
  problems: string[],
  parse: (item: { readonly [key: string]: unknown }, where: string, problems: string[]) => T | undefined,
): T[] {
  if (!Array.isArray(value)) {
    problems.push(`${where}: expected a list, got ${describeValue(value)}`);
    return [];
  }
  const items: T[] = [];
  value.forEach((item: unknown, index) => {
    if (!isPlainObject(item)) {
      problems.push(`${where}[${index}]: expected an object, got ${describeValue(item)}`);
      return;
    }
    const parsed = parse(item, `${where}[${index}]`, problems);
    if (parsed !== undefined) items.push(parsed);
  });
  return items;
}

function parseValueType(value: unknown, where: string, problems: string[]): ValueType | undefined {
  if (isValueType(value)) return value;
  const known = [...SOCKET_TYPES, ...WIDGET_TYPES].join(", ");
  problems.push(`${where}: unknown type ${describeValue(value)}; expected one of ${known}`);
  return undefined;
}

export function isValueType(value: unknown): value is ValueType {
  return typeof value === "string" && (isWidgetType(value) || (SOCKET_TYPES as readonly string[]).includes(value));
}

function parseOutput(item: { readonly [key: string]: unknown }, where: string, problems: string[]): OutputSpec | undefined {
  const name = item["name"];
  const type = parseValueType(item["type"], `${where}.type`, problems);
  if (typeof name !== "string" || name === "") {
    problems.push(`${where}.name: expected a non-empty string, got ${describeValue(name)}`);
    return undefined;
  }
  return type === undefined ? undefined : { name, type };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function parseInput(item: { readonly [key: string]: unknown }, where: string, problems: string[]): InputSpec | undefined {
  const name = item["name"];
  if (typeof name !== "string" || name === "") {
    problems.push(`${where}.name: expected a non-empty string, got ${describeValue(name)}`);
    return undefined;
  }
  const at = `${where} ("${name}")`;
  const type = parseValueType(item["type"], `${at}.type`, problems);
  const kind = item["kind"];
  const required = item["required"];
  if (kind !== "socket" && kind !== "widget") {
    problems.push(`${at}.kind: expected "socket" or "widget", got ${describeValue(kind)}`);
    return undefined;
  }
  if (typeof required !== "boolean") {
    problems.push(`${at}.required: expected true or false, got ${describeValue(required)}`);
    return undefined;
  }
  if (type === undefined) return undefined;
  if ((kind === "widget") !== isWidgetType(type)) {
    problems.push(`${at}: kind "${kind}" does not fit type ${type}`);
    return undefined;
  }
  const spec: Mutable<InputSpec> = { name, type, kind, required };
  const before = problems.length;
  const field = <T>(key: string, accept: (value: unknown) => value is T, expected: string): T | undefined => {
    const value = item[key];
    if (value === undefined || accept(value)) return value;
    problems.push(`${at}.${key}: expected ${expected}, got ${describeValue(value)}`);
    return undefined;
  };
  const min = field("min", isBound, "a number");
  const max = field("max", isBound, "a number");
  const step = field("step", isNumber, "a number");
  const multiline = field("multiline", isBoolean, "true or false");
  const acceptsList = field("accepts_list", isBoolean, "true or false");
  const optional = field("optional", isBoolean, "true or false");
  const choicesFrom = field("choices_from", isString, "a string");
  const tooltip = field("tooltip", isString, "a string");
  const choices = field("choices", isStringList, "a list of strings");
  const fallback = field("default", isLiteral, "a number, string, boolean or list of those");
  if (min !== undefined) spec.min = min;
  if (max !== undefined) spec.max = max;
  if (step !== undefined) spec.step = step;
  if (multiline !== undefined) spec.multiline = multiline;
  if (acceptsList !== undefined) spec.accepts_list = acceptsList;
  if (optional !== undefined) spec.optional = optional;
  if (choicesFrom !== undefined) spec.choices_from = choicesFrom;
  if (tooltip !== undefined) spec.tooltip = tooltip;
  if (choices !== undefined) spec.choices = choices;
  if (fallback !== undefined) spec.default = fallback;
  return problems.length === before ? spec : undefined;
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isBound(value: unknown): value is number | bigint {
  return isNumber(value) || typeof value === "bigint";
}

function isBoolean(value: unknown): value is boolean {
  return typeof value === "boolean";
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

function isStringList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every(isString);
}

export function isWidgetType(type: string): type is WidgetType {
  return (WIDGET_TYPES as readonly string[]).includes(type);
}

function isScalar(value: unknown): value is Scalar {
  return isString(value) || isBoolean(value) || isNumber(value) || typeof value === "bigint";
}

/** Whether a parsed JSON value can be a widget value. */
export function isLiteral(value: unknown): value is LiteralValue {
  return isScalar(value) || (Array.isArray(value) && value.every(isScalar));
}
