/**
 * What the server says about a run, per node: queued / running (with progress) / cached /
 * done / failed, validation problems, the latest preview image, and the sigma curves a node
 * reported. It lives outside the
 * store on purpose: it is not part of the document, is never saved or synced, and undo must
 * never touch it. Every change calls `onChange`, which marks the canvas dirty.
 */

import type { Problem } from "../api/types";

/**
 * "will run" / "from cache" are the server's plan before a queue (POST /api/plan): what the
 * next run would execute and what the cache would serve. They show until a job starts.
 */
export type NodeStatus = "queued" | "running" | "cached" | "done" | "failed" | "will run" | "from cache";

export interface NodeRunState {
  readonly status: NodeStatus;
  readonly step?: number;
  readonly total?: number;
  readonly error?: string;
}

export class RunState {
  readonly nodes = new Map<string, NodeRunState>();
  /** Validation problems by node id (problems without a node are shown as a toast). */
  readonly problems = new Map<string, Problem[]>();
  readonly previews = new Map<string, ImageBitmap>();
  /** Per node, the sigmas its last run reported, by output name (drawn as small plots). */
  readonly sigmas = new Map<string, ReadonlyMap<string, readonly number[]>>();

  constructor(private readonly onChange: () => void) {}

  set(node: string, state: NodeRunState): void {
    this.nodes.set(node, state);
    this.onChange();
  }

  /** A new job of this workflow starts over: old statuses and errors go, previews and curves stay. */
  reset(nodeIds: Iterable<string>, status: NodeStatus | undefined): void {
    this.nodes.clear();
    this.problems.clear();
    if (status !== undefined) for (const id of nodeIds) this.nodes.set(id, { status });
    this.onChange();
  }

  /** The plan's marks; ignored while this tab has a job queued or running (its states win). */
  setPlan(plan: Readonly<Record<string, string>>): boolean {
    for (const state of this.nodes.values()) if (state.status === "queued" || state.status === "running") return false;
    this.nodes.clear();
    for (const [node, what] of Object.entries(plan)) {
      if (what === "run") this.nodes.set(node, { status: "will run" });
      else if (what === "cached") this.nodes.set(node, { status: "from cache" });
    }
    this.onChange();
    return true;
  }

  /** Whether a job of this tab is queued or running (some node shows it). */
  get busy(): boolean {
    for (const state of this.nodes.values()) if (state.status === "queued" || state.status === "running") return true;
    return false;
  }

  setProblems(problems: readonly Problem[]): void {
    this.problems.clear();
    for (const problem of problems) {
      if (problem.node === null) continue;
      const list = this.problems.get(problem.node) ?? [];
      list.push(problem);
      this.problems.set(problem.node, list);
    }
    this.onChange();
  }

  /** An edited node's old validation problems no longer apply; drop them. */
  clearProblems(nodeIds: Iterable<string>): void {
    let changed = false;
    for (const id of nodeIds) changed = this.problems.delete(id) || changed;
    if (changed) this.onChange();
  }

  setPreview(node: string, image: ImageBitmap): void {
    this.previews.get(node)?.close();
    this.previews.set(node, image);
    this.onChange();
  }

  setSigmas(node: string, series: ReadonlyMap<string, readonly number[]>): void {
    this.sigmas.set(node, series);
    this.onChange();
  }

  dispose(): void {
    for (const image of this.previews.values()) image.close();
    this.previews.clear();
  }
}
