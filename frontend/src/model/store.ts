/**
 * The editor store: the single source of truth for the graph.
 *
 * Records live in one table per kind and change only inside `transact`, which logs every
 * single-record change, folds the log into one net `Diff` when the outermost transaction
 * ends, and hands that diff to subscribers (renderer, undo, autosave, server sync). Nested
 * `transact` calls join the enclosing one, so helpers compose into one undo step. If the
 * callback throws, its changes are rolled back and nobody hears about them.
 *
 * Reads are live: inside a transaction, `get` already sees the transaction's own writes.
 */

import type { Catalog } from "./catalog";
import { DiffBuilder, forEachChange, isEmptyDiff, type Diff } from "./diff";
import { freezeInDev } from "./freeze";
import { DOCUMENT_ID, RECORD_KINDS, type DocumentRecord, type RecordKind, type RecordTypes } from "./records";

/** Who made a change; undo records only "user" changes. */
export type ChangeOrigin = "user" | "undo" | "redo" | "remote" | "load";

export interface TransactOptions {
  readonly origin?: ChangeOrigin;
  /**
   * Consecutive user transactions with the same key merge into one undo step (typing into
   * one widget, one drag). Only the outermost transaction's options count.
   */
  readonly mergeKey?: string;
}

export interface Change {
  readonly label: string;
  readonly origin: ChangeOrigin;
  readonly mergeKey?: string;
  readonly diff: Diff;
}

export type Listener = (change: Change) => void;

export interface StoreReader {
  readonly catalog: Catalog;
  get<K extends RecordKind>(kind: K, id: string): RecordTypes[K] | undefined;
  has(kind: RecordKind, id: string): boolean;
  /** Records of one kind in insertion order (the order a saved file lists them). */
  list<K extends RecordKind>(kind: K): IterableIterator<RecordTypes[K]>;
  readonly document: DocumentRecord;
}

export interface Transaction extends StoreReader {
  /** Adds or replaces the record with `record.id`. */
  put<K extends RecordKind>(kind: K, record: RecordTypes[K]): void;
  /** Replaces a record with `change(record)`; throws if it does not exist. */
  update<K extends RecordKind>(kind: K, id: string, change: (record: RecordTypes[K]) => RecordTypes[K]): RecordTypes[K];
  /** Removes a record if present; returns whether it was. */
  remove(kind: RecordKind, id: string): boolean;
}

/** All records, for building a store (from a file, a test) or for saving. */
export type Snapshot = { readonly [K in RecordKind]?: Iterable<RecordTypes[K]> };

type Tables = { [K in RecordKind]: Map<string, RecordTypes[K]> };

interface LoggedChange {
  readonly kind: RecordKind;
  readonly id: string;
  readonly before: RecordTypes[RecordKind] | undefined;
}

interface OpenTransaction {
  readonly label: string;
  readonly options: TransactOptions;
  readonly builder: DiffBuilder;
  readonly log: LoggedChange[];
}

const EMPTY_DOCUMENT: DocumentRecord = freezeInDev({ id: DOCUMENT_ID, meta: {} });

export class Store implements StoreReader {
  private readonly tables: Tables = {
    node: new Map(),
    link: new Map(),
    group: new Map(),
    reroute: new Map(),
    document: new Map(),
  };
  private readonly listeners = new Set<Listener>();
  private open: OpenTransaction | undefined;
  private revision = 0;

  constructor(
    readonly catalog: Catalog,
    initial: Snapshot = {},
  ) {
    // Initial records are the starting state, not a change: no diff, no undo step.
    this.load(initial);
  }

  /** Increments on every committed change; a cheap "is my cached drawing stale?" check. */
  get version(): number {
    return this.revision;
  }

  get document(): DocumentRecord {
    return this.tables.document.get(DOCUMENT_ID) ?? EMPTY_DOCUMENT;
  }

  get<K extends RecordKind>(kind: K, id: string): RecordTypes[K] | undefined {
    const table: Map<string, RecordTypes[K]> = this.tables[kind];
    return table.get(id);
  }

  has(kind: RecordKind, id: string): boolean {
    return this.tables[kind].has(id);
  }

  list<K extends RecordKind>(kind: K): IterableIterator<RecordTypes[K]> {
    const table: Map<string, RecordTypes[K]> = this.tables[kind];
    return table.values();
  }

  get inTransaction(): boolean {
    return this.open !== undefined;
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  transact<T>(label: string, run: (tx: Transaction) => T, options: TransactOptions = {}): T {
    const outer = this.open;
    if (outer !== undefined) return this.runNested(outer, run);
    const open: OpenTransaction = { label, options, builder: new DiffBuilder(), log: [] };
    this.open = open;
    let result: T;
    try {
      result = run(this.transactionHandle(open));
    } catch (error) {
      this.rollBack(open, 0);
      throw error;
    } finally {
      this.open = undefined;
    }
    const diff = open.builder.build();
    if (!isEmptyDiff(diff)) this.commit(open, diff);
    return result;
  }

  /** Applies a diff (an undo step, a remote edit) as one transaction. */
  applyDiff(diff: Diff, label: string, options: TransactOptions = {}): void {
    this.transact(label, (tx) => applyTo(tx, diff), options);
  }

  private runNested<T>(open: OpenTransaction, run: (tx: Transaction) => T): T {
    // A failing inner transaction undoes only its own writes; the caller may recover.
    const savepoint = open.log.length;
    try {
      return run(this.transactionHandle(open));
    } catch (error) {
      this.rollBack(open, savepoint);
      throw error;
    }
  }

  private commit(open: OpenTransaction, diff: Diff): void {
    this.revision += 1;
    const change: Change = {
      label: open.label,
      origin: open.options.origin ?? "user",
      diff,
      ...(open.options.mergeKey === undefined ? {} : { mergeKey: open.options.mergeKey }),
    };
    const errors: unknown[] = [];
    // Every subscriber hears every change even if one of them throws.
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} store listeners failed`);
  }

  private transactionHandle(open: OpenTransaction): Transaction {
    const check = (): void => {
      if (this.open !== open) {
        throw new Error(`transaction "${open.label}" has ended; make changes inside the transact callback`);
      }
    };
    // Reads go through the store itself, so they stay valid after the transaction.
    const reader = this;
    return {
      catalog: this.catalog,
      get document() {
        return reader.document;
      },
      get: (kind, id) => this.get(kind, id),
      has: (kind, id) => this.has(kind, id),
      list: (kind) => this.list(kind),
      put: (kind, record) => {
        check();
        this.write(open, kind, record.id, freezeInDev(record));
      },
      update: (kind, id, change) => {
        check();
        const current = this.get(kind, id);
        if (current === undefined) throw new Error(`cannot update ${kind} "${id}": there is no such ${kind}`);
        const next = freezeInDev(change(current));
        if (next.id !== id) throw new Error(`an update of ${kind} "${id}" must keep its id, got "${next.id}"`);
        this.write(open, kind, id, next);
        return next;
      },
      remove: (kind, id) => {
        check();
        if (!this.has(kind, id)) return false;
        this.write(open, kind, id, undefined);
        return true;
      },
    };
  }

  private write<K extends RecordKind>(open: OpenTransaction, kind: K, id: string, after: RecordTypes[K] | undefined): void {
    const table: Map<string, RecordTypes[K]> = this.tables[kind];
    const before = table.get(id);
    if (before === after) return;
    if (after === undefined) table.delete(id);
    else table.set(id, after);
    open.log.push({ kind, id, before });
    open.builder.record(kind, id, before, after);
  }

  private rollBack(open: OpenTransaction, savepoint: number): void {
    for (let index = open.log.length - 1; index >= savepoint; index -= 1) {
      const entry = open.log[index];
      if (entry === undefined) continue;
      const table: Map<string, RecordTypes[RecordKind]> = this.tables[entry.kind];
      const current = table.get(entry.id);
      if (entry.before === undefined) table.delete(entry.id);
      else table.set(entry.id, entry.before);
      open.builder.record(entry.kind, entry.id, current, entry.before);
    }
    open.log.length = savepoint;
  }

  private load(snapshot: Snapshot): void {
    for (const kind of RECORD_KINDS) this.loadKind(kind, snapshot);
  }

  private loadKind<K extends RecordKind>(kind: K, snapshot: Snapshot): void {
    const records: Iterable<RecordTypes[K]> | undefined = snapshot[kind];
    const table: Map<string, RecordTypes[K]> = this.tables[kind];
    for (const record of records ?? []) {
      if (table.has(record.id)) throw new Error(`duplicate ${kind} id "${record.id}"`);
      table.set(record.id, freezeInDev(record));
    }
  }
}

/**
 * Writes a diff into a transaction. Tolerant on purpose: undoing after a remote edit removed
 * a record must not fail, so a missing record is simply (re)written or skipped.
 */
function applyTo(tx: Transaction, diff: Diff): void {
  forEachChange(diff, (kind, id, _before, after) => {
    if (after === undefined) tx.remove(kind, id);
    else tx.put(kind, after);
  });
}
