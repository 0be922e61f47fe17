/**
 * How error messages name things. Users see titles and display names on the canvas, and ids
 * in files, so a message gives both: `KSampler "sampler"`, `Positive "positive"`.
 */

import { placeholderOf } from "./placeholder";
import type { StoreReader } from "./store";

export function describeEndpoint(store: StoreReader, id: string): string {
  const node = store.get("node", id);
  if (node !== undefined) {
    const name = node.title ?? store.catalog.get(node.type)?.display_name ?? placeholderOf(node)?.classType ?? "node";
    return `${name} "${id}"`;
  }
  if (store.has("reroute", id)) return `reroute "${id}"`;
  return `"${id}"`;
}
