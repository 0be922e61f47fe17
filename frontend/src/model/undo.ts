/**
 * Undo/redo as commands over diffs: each step stores the net diff of one user transaction
 * (or of a run of merged ones); undo applies its inverse, redo applies it again. Nothing is
 * ever reloaded, and only store records are touched, so previews, selection and viewport,
 * which live outside the store, are never rolled back.
 *
 * Merging: a user transaction with a `mergeKey` joins the previous step when that step has
 * the same key and was last extended less than `mergeWindowMs` ago. Typing into a widget
 * or dragging a node thus undoes as one step, while a pause starts a new one.
 */

import { composeDiffs, invertDiff, isEmptyDiff, type Diff } from "./diff";
import type { Change, Store } from "./store";

export interface UndoOptions {
  /** How long after the last edit a same-key edit still merges; default 1000 ms. */
  readonly mergeWindowMs?: number;
  /** Oldest steps are dropped beyond this many; default 500. */
  readonly limit?: number;
  /** Clock in milliseconds, injectable for tests. */
  readonly now?: () => number;
}

interface Step {
  readonly label: string;
  readonly diff: Diff;
  readonly mergeKey: string | undefined;
  readonly lastEditAt: number;
}

export class UndoManager {
  private readonly undoStack: Step[] = [];
  private readonly redoStack: Step[] = [];
  private readonly mergeWindowMs: number;
  private readonly limit: number;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  /** False after undo/redo/breakMerge, so the next edit never joins an older step. */
  private mergeable = false;

  constructor(
    private readonly store: Store,
    options: UndoOptions = {},
  ) {
    this.mergeWindowMs = options.mergeWindowMs ?? 1000;
    this.limit = options.limit ?? 500;
    this.now = options.now ?? (() => Date.now());
    this.unsubscribe = store.listen((change) => this.onChange(change));
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  /** Labels for menu items ("Undo Connect"). */
  get undoLabel(): string | undefined {
    return this.undoStack.at(-1)?.label;
  }

  get redoLabel(): string | undefined {
    return this.redoStack.at(-1)?.label;
  }

  undo(): boolean {
    const step = this.undoStack.pop();
    if (step === undefined) return false;
    this.mergeable = false;
    this.store.applyDiff(invertDiff(step.diff), `Undo ${step.label}`, { origin: "undo" });
    this.redoStack.push(step);
    return true;
  }

  redo(): boolean {
    const step = this.redoStack.pop();
    if (step === undefined) return false;
    this.mergeable = false;
    this.store.applyDiff(step.diff, `Redo ${step.label}`, { origin: "redo" });
    this.undoStack.push(step);
    return true;
  }

  /** Ends the current merge run (e.g. a widget lost focus), so the next edit is a new step. */
  breakMerge(): void {
    this.mergeable = false;
  }

  clear(): void {
    this.undoStack.length = 0;
    this.redoStack.length = 0;
    this.mergeable = false;
  }

  dispose(): void {
    this.unsubscribe();
  }

  private onChange(change: Change): void {
    // Undo/redo diffs are the stacks' own doing; remote and load changes are not this
    // user's to undo.
    if (change.origin !== "user") return;
    const at = this.now();
    const top = this.undoStack.at(-1);
    this.redoStack.length = 0;
    if (
      this.mergeable &&
      top !== undefined &&
      change.mergeKey !== undefined &&
      change.mergeKey === top.mergeKey &&
      at - top.lastEditAt <= this.mergeWindowMs
    ) {
      this.undoStack.pop();
      const diff = composeDiffs(top.diff, change.diff);
      if (!isEmptyDiff(diff)) this.undoStack.push({ ...top, diff, lastEditAt: at });
    } else {
      this.undoStack.push({ label: change.label, diff: change.diff, mergeKey: change.mergeKey, lastEditAt: at });
      if (this.undoStack.length > this.limit) this.undoStack.shift();
    }
    this.mergeable = true;
  }
}
