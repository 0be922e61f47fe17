/**
 * Readable ids: "ksampler", "ksampler_2". Saved workflows are read and diffed by people and
 * scripts (`latentloom run --set sampler.seed=7`), so ids follow the style of the example
 * files instead of being random.
 */

import type { StoreReader } from "./store";

/** Nodes, reroutes and groups share one namespace; links derive their ids from targets. */
export function isIdTaken(store: StoreReader, id: string, reserved: ReadonlySet<string> = new Set()): boolean {
  return reserved.has(id) || store.has("node", id) || store.has("reroute", id) || store.has("group", id);
}

/** `base` if free, else `base_2`, `base_3`... (an existing `_N` suffix is counted on from). */
export function uniqueId(store: StoreReader, base: string, reserved: ReadonlySet<string> = new Set()): string {
  const clean = base.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "node";
  if (!isIdTaken(store, clean, reserved)) return clean;
  const match = /^(.*?)_(\d+)$/.exec(clean);
  const stem = match?.[1] ?? clean;
  let counter = match?.[2] === undefined ? 2 : Number(match[2]) + 1;
  while (isIdTaken(store, `${stem}_${counter}`, reserved)) counter += 1;
  return `${stem}_${counter}`;
}

/** The id a new node of `type` gets: the last segment of the catalog id ("ksampler"). */
export function idBaseForType(type: string): string {
  return type.split(".").at(-1) ?? type;
}
