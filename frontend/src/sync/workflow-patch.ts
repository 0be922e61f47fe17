/**
 * Store diffs <-> workflow merge patches, the two halves of live sync.
 *
 * Outgoing: a `PatchCollector` listens to the store and remembers which parts of the
 * document the diffs touched (node ids, groups, meta). `take()` turns that into a merge
 * patch with the *whole* current entry of each touched node (`null` for a removed one), so
 * a patch never depends on what the receiver had before; groups and meta go whole too
 * (merge patch replaces arrays anyway). Only the touched nodes are serialised, through a
 * small store holding them, their incoming links and the reroutes (a node's saved inputs
 * depend on the reroute chain behind them).
 *
 * Incoming: `remoteDiff` applies a patch to the current document, reads the result back into
 * records and diffs those against the store, so a remote edit lands as an ordinary
 * transaction (origin "remote": rendered, synced, never undone by this user).
 */

import {
  RECORD_KINDS,
  Store,
  DiffBuilder,
  isEmptyDiff,
  isJsonObject,
  jsonEqual,
  recordsFromWorkflow,
  toWorkflow,
  type Change,
  type Diff,
  type Json,
  type JsonObject,
  type RecordKind,
  type RecordTypes,
  type Snapshot,
  type StoreReader,
} from "../model";
import { applyMergePatch, createMergePatch } from "./merge-patch";

/** What a batch of diffs touched, in workflow-document terms. */
export interface Touched {
  readonly nodes: Set<string>;
  groups: boolean;
  meta: boolean;
}

export function emptyTouched(): Touched {
  return { nodes: new Set(), groups: false, meta: false };
}

/** Records which document parts `diff` changes. Pure; exported for tests. */
export function touchDiff(touched: Touched, diff: Diff, store: StoreReader): void {
  const each = <K extends RecordKind>(kind: K, visit: (record: RecordTypes[K]) => void): void => {
    const part = diff[kind];
    for (const record of Object.values(part.added)) visit(record);
    for (const record of Object.values(part.removed)) visit(record);
    for (const [before, after] of Object.values(part.updated)) {
      visit(before);
      visit(after);
    }
  };
  each("node", (node) => touched.nodes.add(node.id));
  each("group", () => (touched.groups = true));
  each("document", () => (touched.meta = true));
  each("reroute", () => (touched.meta = true));
  let reroutesRewired = false;
  each("link", (link) => {
    // A link into a node changes that node's inputs; a link into a reroute is saved in
    // meta.reroutes and may change the inline source of every node downstream of it.
    if (store.has("reroute", link.to.node) || diffHasReroute(diff, link.to.node)) {
      touched.meta = true;
      reroutesRewired = true;
    } else touched.nodes.add(link.to.node);
  });
  if (reroutesRewired) {
    for (const link of store.list("link")) if (store.has("reroute", link.from.node)) touched.nodes.add(link.to.node);
  }
}

function diffHasReroute(diff: Diff, id: string): boolean {
  const part = diff.reroute;
  return id in part.added || id in part.removed || id in part.updated;
}

/**
 * The merge patch that brings a receiver holding `shadow` (the document as last sent or
 * received) up to date for the touched parts. Each touched node is compared with its shadow
 * entry, so a removed title or input is sent as `null` rather than silently kept.
 */
export function patchFor(store: StoreReader, touched: Touched, shadow: JsonObject): JsonObject {
  const patch: Record<string, Json> = {};
  const shadowNodes = isJsonObject(shadow["nodes"]) ? shadow["nodes"] : {};
  if (touched.nodes.size > 0) {
    const present = [...touched.nodes].filter((id) => store.has("node", id));
    const document = toWorkflow(subsetStore(store, present));
    const nodes: Record<string, Json> = {};
    for (const id of touched.nodes) {
      const node = document.nodes[id] as unknown as JsonObject | undefined;
      const old = shadowNodes[id];
      if (node === undefined) {
        if (old !== undefined) nodes[id] = null;
      } else if (old === undefined || !jsonEqual(old, node)) nodes[id] = createMergePatch(old, node);
    }
    if (Object.keys(nodes).length > 0) patch["nodes"] = nodes;
  }
  if (touched.groups || touched.meta) {
    const whole = toWorkflow(subsetStore(store, []));
    const groups = [...(whole.groups ?? [])] as Json;
    if (touched.groups && !jsonEqual(shadow["groups"] ?? [], groups)) patch["groups"] = groups;
    const meta = (whole.meta ?? {}) as Json;
    if (touched.meta && !jsonEqual(shadow["meta"] ?? {}, meta)) patch["meta"] = createMergePatch(shadow["meta"], meta);
    // Subgraph definitions live on the document record too (null: none left).
    const subgraphs = (whole.subgraphs ?? null) as Json;
    if (touched.meta && !jsonEqual(shadow["subgraphs"] ?? null, subgraphs)) {
      patch["subgraphs"] = subgraphs === null ? null : createMergePatch(shadow["subgraphs"], subgraphs);
    }
  }
  return patch;
}

/** A throwaway store with some nodes, the links into them, every reroute and group, meta. */
function subsetStore(store: StoreReader, nodeIds: readonly string[]): Store {
  const ids = new Set(nodeIds);
  const snapshot: Snapshot = {
    node: nodeIds.map((id) => store.get("node", id)).filter((node) => node !== undefined),
    link: [...store.list("link")].filter((link) => ids.has(link.to.node) || store.has("reroute", link.to.node)),
    reroute: [...store.list("reroute")],
    group: [...store.list("group")],
    document: [store.document],
  };
  return new Store(store.catalog, snapshot);
}

/**
 * Accumulates touched parts from user, undo and redo changes until `take()`, and keeps the
 * shadow document (what the server holds, as far as this client knows) that patches are
 * computed against.
 */
export class PatchCollector {
  private touched = emptyTouched();
  private shadowDocument: JsonObject;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    onTouched: () => void,
  ) {
    this.shadowDocument = toWorkflow(store) as unknown as JsonObject;
    this.unsubscribe = store.listen((change: Change) => {
      // Remote and load changes came from the server; echoing them back would loop.
      if (change.origin === "remote" || change.origin === "load") return;
      touchDiff(this.touched, change.diff, store);
      onTouched();
    });
  }

  get shadow(): JsonObject {
    return this.shadowDocument;
  }

  get pending(): boolean {
    const touched = this.touched;
    return touched.nodes.size > 0 || touched.groups || touched.meta;
  }

  /** The patch for everything touched since the last call, or undefined if nothing changed. */
  take(): JsonObject | undefined {
    if (!this.pending) return undefined;
    const patch = patchFor(this.store, this.touched, this.shadowDocument);
    this.touched = emptyTouched();
    if (Object.keys(patch).length === 0) return undefined;
    this.shadowDocument = asObject(applyMergePatch(this.shadowDocument, patch));
    return patch;
  }

  /** Applies another client's patch to the store (as a remote change) and to the shadow. */
  acceptRemote(patch: Json): void {
    const diff = remoteDiff(this.store, patch);
    this.shadowDocument = asObject(applyMergePatch(this.shadowDocument, patch));
    if (!isEmptyDiff(diff)) this.store.applyDiff(diff, "Remote edit", { origin: "remote" });
  }

  dispose(): void {
    this.unsubscribe();
  }
}

function asObject(value: Json): JsonObject {
  return isJsonObject(value) ? value : {};
}

/** The diff that turns the store into the document after `patch`; empty if nothing changes. */
export function remoteDiff(store: StoreReader, patch: Json): Diff {
  const current = toWorkflow(store) as unknown as JsonObject;
  const next = applyMergePatch(current, patch);
  return diffToRecords(store, recordsFromWorkflow(next));
}

/** The diff from the store's records to `target` (records compared as JSON). */
export function diffToRecords(store: StoreReader, target: Snapshot): Diff {
  const builder = new DiffBuilder();
  for (const kind of RECORD_KINDS) diffKind(builder, store, kind, target[kind] ?? []);
  return builder.build();
}

function diffKind<K extends RecordKind>(builder: DiffBuilder, store: StoreReader, kind: K, target: Iterable<RecordTypes[K]>): void {
  const seen = new Set<string>();
  for (const record of target) {
    seen.add(record.id);
    const current = store.get(kind, record.id);
    if (current === undefined || !jsonEqual(current, record)) builder.record(kind, record.id, current, record);
  }
  for (const record of store.list(kind)) {
    if (!seen.has(record.id)) builder.record(kind, record.id, record, undefined);
  }
}
