/**
 * Diffs: what one transaction (or one undo step) changed, per record kind.
 *
 * A diff stores whole records by reference: `added`, `removed`, and `updated` as
 * `[before, after]`. That makes inverting trivial (swap) and composing cheap, so undo/redo is
 * "apply the inverse diff", never "reload the graph". Ids index plain objects (built with
 * `Object.fromEntries`, which defines own properties even for odd ids like "__proto__") so a
 * diff can be sent to the server as JSON as is.
 */

import { RECORD_KINDS, type RecordKind, type RecordTypes } from "./records";

export interface KindDiff<R> {
  readonly added: Readonly<Record<string, R>>;
  readonly updated: Readonly<Record<string, readonly [before: R, after: R]>>;
  readonly removed: Readonly<Record<string, R>>;
}

export type Diff = { readonly [K in RecordKind]: KindDiff<RecordTypes[K]> };

/** One record's fate: absent `before` is an addition, absent `after` a removal. */
export type ChangeVisitor = <K extends RecordKind>(
  kind: K,
  id: string,
  before: RecordTypes[K] | undefined,
  after: RecordTypes[K] | undefined,
) => void;

interface NetChange<R> {
  readonly initial: R | undefined;
  current: R | undefined;
}

type ChangeTables = { [K in RecordKind]: Map<string, NetChange<RecordTypes[K]>> };

/**
 * Accumulates single-record changes into a net diff: add-then-remove vanishes,
 * remove-then-add becomes an update, a chain of updates keeps the first `before`.
 */
export class DiffBuilder {
  private readonly tables: ChangeTables = {
    node: new Map(),
    link: new Map(),
    group: new Map(),
    reroute: new Map(),
    document: new Map(),
  };

  record<K extends RecordKind>(
    kind: K,
    id: string,
    before: RecordTypes[K] | undefined,
    after: RecordTypes[K] | undefined,
  ): void {
    const table: Map<string, NetChange<RecordTypes[K]>> = this.tables[kind];
    const existing = table.get(id);
    if (existing === undefined) table.set(id, { initial: before, current: after });
    else existing.current = after;
  }

  /** Feeds every change of `diff` in, so `build()` yields "what we had, then diff". */
  include(diff: Diff): void {
    forEachChange(diff, (kind, id, before, after) => this.record(kind, id, before, after));
  }

  build(): Diff {
    return {
      node: buildKind(this.tables.node),
      link: buildKind(this.tables.link),
      group: buildKind(this.tables.group),
      reroute: buildKind(this.tables.reroute),
      document: buildKind(this.tables.document),
    };
  }
}

function buildKind<R>(table: Map<string, NetChange<R>>): KindDiff<R> {
  const added: [string, R][] = [];
  const updated: [string, readonly [R, R]][] = [];
  const removed: [string, R][] = [];
  for (const [id, { initial, current }] of table) {
    if (initial === undefined && current !== undefined) added.push([id, current]);
    else if (initial !== undefined && current === undefined) removed.push([id, initial]);
    else if (initial !== undefined && current !== undefined && initial !== current) {
      updated.push([id, [initial, current]]);
    }
  }
  return {
    added: Object.fromEntries(added),
    updated: Object.fromEntries(updated),
    removed: Object.fromEntries(removed),
  };
}

export function emptyDiff(): Diff {
  return new DiffBuilder().build();
}

export function forEachChange(diff: Diff, visit: ChangeVisitor): void {
  for (const kind of RECORD_KINDS) visitKind(diff, kind, visit);
}

function visitKind<K extends RecordKind>(diff: Diff, kind: K, visit: ChangeVisitor): void {
  const part: KindDiff<RecordTypes[K]> = diff[kind];
  for (const [id, record] of Object.entries(part.removed)) visit(kind, id, record, undefined);
  for (const [id, [before, after]] of Object.entries(part.updated)) visit(kind, id, before, after);
  for (const [id, record] of Object.entries(part.added)) visit(kind, id, undefined, record);
}

export function isEmptyDiff(diff: Diff): boolean {
  return RECORD_KINDS.every((kind) => {
    const part = diff[kind];
    return (
      Object.keys(part.added).length === 0 &&
      Object.keys(part.updated).length === 0 &&
      Object.keys(part.removed).length === 0
    );
  });
}

/** The diff that undoes `diff`. */
export function invertDiff(diff: Diff): Diff {
  const builder = new DiffBuilder();
  forEachChange(diff, (kind, id, before, after) => builder.record(kind, id, after, before));
  return builder.build();
}

/** One diff with the effect of `first` followed by `second` (used to merge undo steps). */
export function composeDiffs(first: Diff, second: Diff): Diff {
  const builder = new DiffBuilder();
  builder.include(first);
  builder.include(second);
  return builder.build();
}
