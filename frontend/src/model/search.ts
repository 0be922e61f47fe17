/**
 * Fuzzy node search for the "add node" box, and for the menu that opens when a link is
 * dropped on empty canvas (then only node types that can take the dragged link are offered,
 * with the socket to connect).
 *
 * Every word of the query must match one of the node's fields; a word scores by how well it
 * matches (exact > prefix > word start > substring > scattered letters such as "lc" for
 * Load Checkpoint), weighted by field (display name > aliases such as ComfyUI's class names >
 * id > category > description).
 * Scattered-letter matches count only in names: in a description they would match anything.
 */

import type { Catalog, NodeSpec } from "./catalog";

export interface SearchOptions {
  /** The type of the dragged link; only nodes with a matching socket are returned. */
  readonly socketType?: string;
  /**
   * Which side of the candidate node must carry `socketType`: "input" when the link was
   * dragged out of an output, "output" when dragged backwards out of an input. Either side
   * when omitted.
   */
  readonly direction?: "input" | "output";
  readonly limit?: number;
}

export interface SearchResult {
  readonly spec: NodeSpec;
  readonly score: number;
  /** With `socketType`: the input or output to connect the dragged link to. */
  readonly socket?: string;
}

interface Field {
  readonly text: string;
  readonly weight: number;
  readonly scattered: boolean;
}

export function searchNodes(catalog: Catalog, query: string, options: SearchOptions = {}): SearchResult[] {
  const words = query.toLowerCase().split(/\s+/).filter((word) => word !== "");
  const results: SearchResult[] = [];
  for (const spec of catalog.specs) {
    const socket = options.socketType === undefined ? undefined : matchingSocket(spec, options.socketType, options.direction);
    if (options.socketType !== undefined && socket === undefined) continue;
    const base = scoreSpec(spec, words);
    if (base === undefined) continue;
    // Typing a node's whole name picks that node, even when another node matches each word
    // better in isolation ("save image": Save Image, not Save Animation of category image).
    const score = words.length > 1 && words.join(" ") === spec.display_name.toLowerCase() ? base + 1000 : base;
    results.push({ spec, score, ...(socket === undefined ? {} : { socket }) });
  }
  results.sort(
    (a, b) =>
      b.score - a.score ||
      (words.length === 0 ? a.spec.category.localeCompare(b.spec.category) : 0) ||
      a.spec.display_name.localeCompare(b.spec.display_name),
  );
  return options.limit === undefined ? results : results.slice(0, options.limit);
}

function matchingSocket(spec: NodeSpec, type: string, direction: SearchOptions["direction"]): string | undefined {
  if (direction !== "output") {
    // A real socket beats a widget of the same type (a dragged INT prefers an INT socket).
    const inputs = spec.inputs.filter((input) => input.type === type);
    const input = inputs.find((candidate) => candidate.kind === "socket") ?? inputs[0];
    if (input !== undefined) return input.name;
  }
  if (direction !== "input") return spec.outputs.find((output) => output.type === type)?.name;
  return undefined;
}

/** Sum of the word scores, or undefined when some word matches nothing. */
function scoreSpec(spec: NodeSpec, words: readonly string[]): number | undefined {
  const fields: Field[] = [
    { text: spec.display_name, weight: 1, scattered: true },
    { text: (spec.aliases ?? []).join(" "), weight: 0.9, scattered: true },
    { text: spec.id, weight: 0.8, scattered: true },
    { text: spec.category, weight: 0.5, scattered: false },
    { text: spec.description, weight: 0.3, scattered: false },
  ];
  let total = 0;
  for (const word of words) {
    const best = Math.max(...fields.map((field) => field.weight * wordScore(word, field)));
    if (best <= 0) return undefined;
    total += best;
  }
  return total;
}

function wordScore(word: string, field: Field): number {
  const text = field.text.toLowerCase();
  if (text === word) return 100;
  if (text.startsWith(word)) return 80;
  const at = text.indexOf(word);
  if (at > 0 && wordStarts(field.text).has(at)) return 60;
  if (at > 0) return field.scattered ? 40 : 0;
  return field.scattered ? scatteredScore(word, field.text) : 0;
}

/**
 * Letters of `word` in order anywhere in `text`, scored by how many land on word starts
 * ("lc" hits both initials of "Load Checkpoint" and outranks letters found mid-word).
 */
function scatteredScore(word: string, text: string): number {
  const lower = text.toLowerCase();
  const starts = wordStarts(text);
  let position = 0;
  let onStarts = 0;
  for (const letter of word) {
    // Prefer the next word start holding this letter; else the next occurrence at all.
    let found = -1;
    for (const start of starts) {
      if (start >= position && lower[start] === letter) {
        found = start;
        break;
      }
    }
    if (found === -1) found = lower.indexOf(letter, position);
    else onStarts += 1;
    if (found === -1) return 0;
    position = found + 1;
  }
  return 10 + 20 * (onStarts / word.length);
}

/** Indices where a word begins: after a space, dot, underscore or dash, or at a capital. */
function wordStarts(text: string): ReadonlySet<number> {
  const starts = new Set<number>([0]);
  for (let index = 1; index < text.length; index += 1) {
    const previous = text[index - 1] ?? "";
    const current = text[index] ?? "";
    const afterSeparator = /[\s._\-/]/.test(previous) && !/[\s._\-/]/.test(current);
    const camel = /[a-z]/.test(previous) && /[A-Z]/.test(current);
    if (afterSeparator || camel) starts.add(index);
  }
  return starts;
}
