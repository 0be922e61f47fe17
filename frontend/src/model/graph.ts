/**
 * Read-only graph queries over link records: who feeds whom. Built on demand from the link
 * table (O(links)); the editor's graphs are small enough that an incrementally maintained
 * index would be complexity without a measurable gain.
 */

import type { LinkRecord } from "./records";
import type { StoreReader } from "./store";

/** Links whose source or target is one of `ids`. */
export function linksTouching(store: StoreReader, ids: ReadonlySet<string>): LinkRecord[] {
  return [...store.list("link")].filter((link) => ids.has(link.from.node) || ids.has(link.to.node));
}

/** Links into an endpoint (node or reroute). */
export function linksInto(store: StoreReader, id: string): LinkRecord[] {
  return [...store.list("link")].filter((link) => link.to.node === id);
}

/** Links out of an endpoint (node or reroute). */
export function linksOutOf(store: StoreReader, id: string): LinkRecord[] {
  return [...store.list("link")].filter((link) => link.from.node === id);
}

/**
 * A path of endpoint ids from `start` to `goal` following links downstream, or undefined.
 * Breadth-first, so the reported path (e.g. in a cycle message) is a shortest one.
 */
export function downstreamPath(store: StoreReader, start: string, goal: string): string[] | undefined {
  const next = new Map<string, string[]>();
  for (const link of store.list("link")) {
    const targets = next.get(link.from.node) ?? [];
    targets.push(link.to.node);
    next.set(link.from.node, targets);
  }
  const cameFrom = new Map<string, string>([[start, start]]);
  const queue = [start];
  for (let head = 0; head < queue.length; head += 1) {
    const current = queue[head];
    if (current === undefined) break;
    if (current === goal) return unwind(cameFrom, start, goal);
    for (const target of next.get(current) ?? []) {
      if (cameFrom.has(target)) continue;
      cameFrom.set(target, current);
      queue.push(target);
    }
  }
  return undefined;
}

function unwind(cameFrom: ReadonlyMap<string, string>, start: string, goal: string): string[] {
  const path = [goal];
  let current = goal;
  while (current !== start) {
    current = cameFrom.get(current) ?? start;
    path.push(current);
  }
  return path.reverse();
}
