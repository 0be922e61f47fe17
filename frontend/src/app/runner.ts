/**
 * Running workflows: queueing (with the seed controls applied after each queue), and turning
 * server events into per-node run state on the tab that queued the job. Jobs from other
 * clients still feed the queue panel and the gallery, but light up no nodes here.
 */

import { api, ApiError, imagesIn, type ImageRef } from "../api/client";
import type { Event, PreviewHeader } from "../api/types";
import { setWidgetValue, toWorkflow } from "../model";
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

  async queue(tab: DocumentTab, runs: number, front = false): Promise<void> {
    const workflow = toWorkflow(tab.store);
    // Marked before the request: the job may start, and report, before the response is back.
    tab.run.reset(Object.keys(workflow.nodes), "queued");
    try {
      const created = await api.queue(workflow, { runs, front, clientId: this.workspace.clientId });
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

  /** Seeds set to increment/randomize change after every queue, as one undoable step. */
  private advanceSeeds(tab: DocumentTab): void {
    const store = tab.store;
    store.transact("Seeds after run", () => {
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
    const run = tab?.run;
    switch (event.kind) {
      case "job.queued":
      case "job.started":
        if (event.kind === "job.started" && tab !== undefined) tab.run.reset([...tab.store.list("node")].map((node) => node.id), "queued");
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
        return;
      case "job.cancelled":
        if (tab !== undefined) tab.run.reset([], undefined);
        this.events.onJobsChanged();
        return;
      case "job.finished": {
        const images = Object.values(event.outputs).flatMap((outputs) => imagesIn(outputs));
        if (images.length > 0) this.events.onImages(images);
        this.events.onJobsChanged();
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
