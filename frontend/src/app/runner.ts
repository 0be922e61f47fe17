/**
 * Running workflows: queueing (with the seed controls applied after each queue), and turning
 * server events into per-node run state on the tab that queued the job. Jobs from other
 * clients still feed the queue panel and the gallery, but light up no nodes here.
 *
 * Run to here queues with `targets` (the server runs only what they need). After an edit
 * that changes what would run (types, values, links, modes; not positions), and a short
 * pause, the runner asks the server's plan which nodes would run and which the cache serves
 * and marks them, or, with "queue on change" on, queues the graph again; an edit made while
 * that tab's job is still going queues once the job ends.
 */

import { api, ApiError, imagesIn, type ImageRef } from "../api/client";
import type { Event, PreviewHeader } from "../api/types";
import { flatRunTargets, setWidgetValue, shownNode, shownRunPlan, stringifyJson, subgraphIdOf, toWorkflow, type Change } from "../model";
import { runToHerePlan } from "./menu-actions";
import { isSeed, nextSeed, seedControl } from "../canvas/widgets";
import { sigmaReport } from "../canvas/sigma-plot";
import type { DocumentTab } from "./document-tab";
import type { Workspace } from "./workspace";
import type { RunState } from "./run-state";

export interface RunnerEvents {
  onJobsChanged(): void;
  onImages(images: readonly ImageRef[]): void;
  /** A node (Save Image, Preview Image) reported images: shown on the node itself. */
  onNodeImages?(run: RunState, node: string, images: readonly ImageRef[]): void;
  onPreview(image: ImageBitmap, blob: Blob): void;
  toast(message: string): void;
}

export class Runner {
  /** Counts for tests: previews received and applied. */
  previewsReceived = 0;
  /** The last node events as "kind node step/total", for tests that must not miss a short state. */
  readonly log: string[] = [];

  constructor(
    private readonly workspace: Workspace,
    private readonly events: RunnerEvents,
  ) {}

  /** Re-queue after every graph change that alters what would run (the toolbar toggle). */
  queueOnChange = false;
  /** How long an edit must rest before the plan is asked or the graph re-queued. */
  debounceMs = 400;
  /** Counts for tests: plans asked and applied. */
  plansApplied = 0;
  // A Map (not a WeakMap) so closed tabs can be found and their timers cleared (forgetClosed).
  private readonly watched = new Map<DocumentTab, WatchState>();

  /**
   * Stops following tabs the workspace has closed: a pending debounce timer would otherwise
   * keep a closed tab's whole store reachable until it fired.
   */
  forgetClosed(): void {
    for (const [tab, state] of this.watched) {
      if (this.workspace.tabs.includes(tab)) continue;
      clearTimeout(state.timer);
      state.unlisten?.();
      this.watched.delete(tab);
    }
  }

  async queue(tab: DocumentTab, runs: number, front = false, targets?: readonly string[]): Promise<void> {
    const document = toWorkflow(tab.store);
    // Jobs carry the tab's (saved workflow's) name as their title: the history lists it, and
    // a reload finds the results of this workflow by it (node-results.ts). Never a result.
    const workflow = { ...document, meta: { ...document.meta, title: tab.name } };
    const state = this.watched.get(tab);
    if (state !== undefined) state.signature = signature(workflow);
    // Marked before the request: the job may start, and report, before the response is back.
    // Targets inside subgraphs are flattened ids ("render:sampler"): plan them on the flattened graph.
    const flatTargets = targets?.some((target) => !tab.store.has("node", target)) === true;
    const needed =
      targets === undefined ? Object.keys(workflow.nodes) : flatTargets ? shownRunPlan(workflow, targets) : targets.flatMap((target) => runToHerePlan(tab.store, target));
    tab.run.reset(needed, "queued");
    try {
      const created = await api.queue(workflow, { runs, front, clientId: this.workspace.clientId, ...(targets === undefined ? {} : { targets }) });
      for (const job of created.jobs) tab.jobs.add(job.id);
      for (const job of created.jobs) this.replay(job.id);
      this.advanceSeeds(tab);
      this.events.onJobsChanged();
    } catch (error) {
      tab.run.reset([], undefined);
      if (error instanceof ApiError && error.problems.length > 0) {
        tab.run.setProblems(error.problems);
        const general = error.problems.filter((problem) => problem.node === null).map((problem) => problem.message);
        const count = error.problems.length;
        this.events.toast(`${count} problem${count === 1 ? "" : "s"} in the workflow${general.length > 0 ? `: ${general.join("; ")}` : " (shown on the nodes)"}`);
      } else this.events.toast(error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * Run to here: only what `nodeId` needs. `path` holds the instance ids of the subgraphs open
   * around it (the node is then an inner one); a subgraph node runs the nodes behind its outputs.
   */
  runTo(tab: DocumentTab, nodeId: string, path: readonly string[] = []): Promise<void> {
    const workflow = toWorkflow(tab.store);
    const type = workflow.nodes[nodeId]?.type;
    const isInstance = type !== undefined && subgraphIdOf(type) !== undefined;
    let targets: string[] = [nodeId];
    if (path.length > 0 || isInstance) {
      try {
        targets = flatRunTargets(workflow, nodeId, path);
      } catch (error) {
        this.events.toast(error instanceof Error ? error.message : String(error));
        return Promise.resolve();
      }
    }
    if (targets.length === 0) {
      this.events.toast(`node "${nodeId}" has nothing to run: a subgraph needs an output to run to`);
      return Promise.resolve();
    }
    return this.queue(tab, 1, false, targets);
  }

  /** Starts following a tab's edits (plan marks, queue on change); idempotent. */
  watch(tab: DocumentTab): void {
    if (this.watched.has(tab)) return;
    const state: WatchState = { signature: signature(toWorkflow(tab.store)), pending: false };
    this.watched.set(tab, state);
    state.unlisten = tab.store.listen((change: Change) => {
      // The seeds' own advance after a queue is not an edit (it would re-queue forever).
      if (change.label === SEEDS_LABEL || change.origin === "load") return;
      clearTimeout(state.timer);
      state.timer = setTimeout(() => void this.settled(tab), this.debounceMs);
    });
    // The first plan waits like an edit does, so a tab opened and closed at once asks nothing.
    state.timer = setTimeout(() => {
      if (this.workspace.tabs.includes(tab)) void this.refreshPlan(tab);
    }, this.debounceMs);
  }

  /** An edit has rested: queue again (queue on change) or refresh the plan marks. */
  private async settled(tab: DocumentTab): Promise<void> {
    const state = this.watched.get(tab);
    if (state === undefined || !this.workspace.tabs.includes(tab)) return;
    const now = signature(toWorkflow(tab.store));
    if (now === state.signature) return;
    if (this.queueOnChange) {
      if (tab.run.busy) {
        state.pending = true;
        return;
      }
      await this.queue(tab, 1);
      return;
    }
    state.signature = now;
    await this.refreshPlan(tab);
  }

  /** Asks the server which nodes the next run would execute and marks them; quiet on failure. */
  async refreshPlan(tab: DocumentTab): Promise<void> {
    if (tab.run.busy) return;
    try {
      const plan = await api.plan(toWorkflow(tab.store));
      if (tab.run.setPlan(plan.nodes)) this.plansApplied += 1;
    } catch {
      // An invalid graph has no plan; queueing shows its problems.
    }
  }

  /** A job of this tab ended: an edit that waited for it queues now. */
  private jobEnded(tab: DocumentTab | undefined): void {
    const state = tab === undefined ? undefined : this.watched.get(tab);
    if (tab === undefined || state === undefined || !state.pending) return;
    state.pending = false;
    if (this.queueOnChange) void this.queue(tab, 1);
  }

  /** Seeds set to increment/randomize change after every queue, as one undoable step. */
  private advanceSeeds(tab: DocumentTab): void {
    const store = tab.store;
    store.transact(SEEDS_LABEL, () => {
      for (const node of store.list("node")) {
        for (const input of store.catalog.get(node.type)?.inputs ?? []) {
          if (!isSeed(input)) continue;
          const mode = seedControl(node, input.name);
          const value = node.inputs[input.name];
          if (mode === "fixed" || (typeof value !== "number" && typeof value !== "bigint")) continue;
          setWidgetValue(store, node.id, input.name, nextSeed(mode, value, input));
        }
      }
    });
  }

  private tabFor(job: string | null): DocumentTab | undefined {
    if (job === null) return undefined;
    return this.workspace.tabs.find((tab) => tab.jobs.has(job));
  }

  /**
   * Events of jobs no tab claims yet, kept briefly: a job queued here can send events before
   * the POST that queued it has answered with its id.
   */
  private readonly unclaimed = new Map<string, Event[]>();

  private replay(job: string): void {
    const events = this.unclaimed.get(job);
    this.unclaimed.delete(job);
    for (const event of events ?? []) this.onEvent(event);
  }

  onEvent(event: Event): void {
    const tab = this.tabFor(event.job);
    if (tab === undefined && event.job !== null) {
      const list = this.unclaimed.get(event.job) ?? [];
      list.push(event);
      this.unclaimed.set(event.job, list);
      // Only the newest few jobs can still be claimed; forget older ones.
      if (this.unclaimed.size > 20) this.unclaimed.delete(this.unclaimed.keys().next().value as string);
    }
    if ("node" in event && event.node !== null) {
      this.log.push(`${event.kind} ${event.node}${event.kind === "node.progress" ? ` ${event.step}/${event.total}` : ""}`);
      if (this.log.length > 2000) this.log.splice(0, 1000);
    }
    // Inner nodes of a subgraph run as "instance:inner"; their state shows on the instance.
    if (tab !== undefined && "node" in event && event.node !== null && !tab.store.has("node", event.node)) {
      event = { ...event, node: shownNode((id) => tab.store.has("node", id), event.node) };
    }
    const run = tab?.run;
    switch (event.kind) {
      case "job.queued":
      case "job.started":
        if (event.kind === "job.started" && tab !== undefined) {
          // Keep the queued marks a run to here set; a whole run marks every node.
          const queued = [...tab.run.nodes].filter(([, state]) => state.status === "queued").map(([id]) => id);
          tab.run.reset(queued.length > 0 ? queued : [...tab.store.list("node")].map((node) => node.id), "queued");
        }
        this.events.onJobsChanged();
        return;
      case "node.started":
        run?.set(event.node, { status: "running" });
        return;
      case "node.progress":
        run?.set(event.node, { status: "running", step: event.step, total: event.total });
        return;
      case "node.cached":
      case "node.finished": {
        // A cached node reports what it reported when it ran, so its curve shows either way.
        const sigmas = sigmaReport(event.outputs);
        if (sigmas !== undefined) run?.setSigmas(event.node, sigmas);
        run?.set(event.node, { status: event.kind === "node.cached" ? "cached" : "done" });
        const images = imagesIn(event.outputs);
        if (run !== undefined && images.length > 0) this.events.onNodeImages?.(run, event.node, images);
        return;
      }
      case "node.failed":
        run?.set(event.node, { status: "failed", error: event.error });
        return;
      case "job.failed":
        if (event.node !== null) run?.set(event.node, { status: "failed", error: event.error });
        if (tab !== undefined) this.events.toast(`the run failed: ${event.error}`);
        this.events.onJobsChanged();
        this.jobEnded(tab);
        return;
      case "job.cancelled":
        if (tab !== undefined) tab.run.reset([], undefined);
        this.events.onJobsChanged();
        this.jobEnded(tab);
        return;
      case "job.finished": {
        const images = Object.values(event.outputs).flatMap((outputs) => imagesIn(outputs));
        if (images.length > 0) this.events.onImages(images);
        this.events.onJobsChanged();
        this.jobEnded(tab);
        return;
      }
    }
  }

  onPreview(header: PreviewHeader, jpeg: Blob): void {
    this.previewsReceived += 1;
    const tab = this.tabFor(header.job);
    void createImageBitmap(jpeg).then(
      (image) => {
        if (tab !== undefined) tab.run.setPreview(header.node, image);
        void createImageBitmap(image).then((copy) => this.events.onPreview(copy, jpeg));
      },
      () => undefined,
    );
  }
}

const SEEDS_LABEL = "Seeds after run";

interface WatchState {
  timer?: ReturnType<typeof setTimeout>;
  signature: string;
  pending: boolean;
  unlisten?: () => void;
}

/** What decides a run: each node's type, inputs and mode (not its position or title). */
function signature(workflow: ReturnType<typeof toWorkflow>): string {
  return stringifyJson(Object.entries(workflow.nodes).map(([id, node]) => [id, node.type, node.inputs, node.mode ?? "run"]));
}
