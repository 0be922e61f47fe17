/**
 * One open workflow: its store, undo history, selection, run state, view and sync collector.
 * Tabs are independent, so switching tabs swaps what the renderer shows and nothing else.
 */

import { Store, UndoManager, type Catalog } from "../model";
import { defineSubgraphs, fromWorkflow } from "../model";
import { PatchCollector } from "../sync/workflow-patch";
import { IDENTITY, type Viewport } from "../canvas/viewport";
import { RunState } from "./run-state";

export class DocumentTab {
  readonly store: Store;
  readonly undo: UndoManager;
  readonly run: RunState;
  readonly collector: PatchCollector;
  selection: ReadonlySet<string> = new Set();
  view: Viewport = IDENTITY;
  /** Whether the view was fitted once (new tabs fit their graph on first show). */
  fitted = false;
  /** Jobs queued from this tab, so their events light up this tab's nodes. */
  readonly jobs = new Set<string>();

  constructor(
    public name: string,
    document: unknown,
    catalog: Catalog,
    onRunChange: () => void,
    onTouched: () => void,
  ) {
    this.store = document === undefined ? new Store(catalog) : fromWorkflow(document, catalog);
    this.undo = new UndoManager(this.store);
    this.run = new RunState(onRunChange);
    this.collector = new PatchCollector(this.store, onTouched);
    this.unsubscribe = this.store.listen((change) => {
      // Subgraph definitions that arrive by sync, undo or redo give their instances sockets.
      const documentChanged = Object.keys(change.diff.document.added).length + Object.keys(change.diff.document.updated).length > 0;
      if (documentChanged) defineSubgraphs(this.store.catalog, this.store.document.subgraphs);
      if (this.run.problems.size === 0) return;
      const { node, link } = change.diff;
      const touched = [...Object.keys(node.updated), ...Object.keys(node.removed)];
      for (const record of [...Object.values(link.added), ...Object.values(link.removed)]) touched.push(record.to.node);
      for (const [before] of Object.values(link.updated)) touched.push(before.to.node);
      this.run.clearProblems(touched);
    });
  }

  private readonly unsubscribe: () => void;

  dispose(): void {
    this.unsubscribe();
    this.undo.dispose();
    this.collector.dispose();
    this.run.dispose();
  }
}
