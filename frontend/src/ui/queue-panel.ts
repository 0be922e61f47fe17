/**
 * The queue: running and queued jobs in the order they will run, with cancel, move up/down
 * (by priority), interrupt (cancel the running job) and clear (cancel every queued job).
 * Refreshed from GET /api/jobs after job events, at most every 200 ms.
 */

import { api } from "../api/client";
import type { JobView } from "../api/types";
import { el } from "./dom";

export class QueuePanel {
  readonly element = el("section", { className: "panel queue-panel" });
  private readonly list = el("ol", { className: "queue-list" });
  private timer: number | undefined;
  private jobs: JobView[] = [];

  constructor(private readonly toast: (message: string) => void) {
    this.element.append(
      el("header", {},
        el("h2", { text: "Queue" }),
        el("button", { text: "Interrupt", title: "Cancel the running job", onClick: () => void this.interrupt() }),
        el("button", { text: "Clear", title: "Cancel every queued job", onClick: () => void this.clear() }),
      ),
      this.list,
    );
    this.refresh();
  }

  refresh(): void {
    if (this.timer !== undefined) return;
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      void this.load();
    }, 200);
  }

  private async load(): Promise<void> {
    try {
      const { jobs } = await api.jobs(["running", "queued"]);
      // The server lists the queue in run order; the running job goes on top.
      this.jobs = jobs.sort((a, b) => Number(b.status === "running") - Number(a.status === "running"));
      this.render();
    } catch (error) {
      this.toast(`could not list the queue: ${String(error)}`);
    }
  }

  private render(): void {
    this.list.replaceChildren(
      ...this.jobs.map((job, index) =>
        el("li", { className: `queue-item ${job.status}`, data: { job: job.id } },
          el("span", { className: "status", text: job.status }),
          el("span", { className: "name", text: titleOf(job), title: job.id }),
          ...(job.status === "queued"
            ? [
                el("button", { text: "▲", title: "Run earlier", onClick: () => void this.move(index, -1) }),
                el("button", { text: "▼", title: "Run later", onClick: () => void this.move(index, 1) }),
              ]
            : []),
          el("button", { text: "✕", title: "Cancel", onClick: () => void this.act(api.cancel(job.id)) }),
        ),
      ),
    );
    if (this.jobs.length === 0) this.list.append(el("li", { className: "empty", text: "Nothing queued" }));
  }

  /**
   * Swaps a queued job with its neighbour. Equal priorities run oldest first, so one new
   * priority cannot place a job between two others; instead the queued jobs get distinct
   * descending priorities in the wanted order (only the ones that change are sent).
   */
  private async move(index: number, direction: -1 | 1): Promise<void> {
    const queued = this.jobs.filter((job) => job.status === "queued");
    const at = queued.indexOf(this.jobs[index] as JobView);
    const other = at + direction;
    if (at < 0 || other < 0 || other >= queued.length) return;
    const order = [...queued];
    [order[at], order[other]] = [order[other] as JobView, order[at] as JobView];
    const base = Math.min(...queued.map((job) => job.priority));
    const changes = order
      .map((job, position) => ({ job, priority: base + order.length - 1 - position }))
      .filter(({ job, priority }) => job.priority !== priority);
    // Highest first, so the queue never passes through an order that would start the wrong job.
    for (const { job, priority } of changes.sort((a, b) => b.priority - a.priority)) {
      await this.act(api.reprioritize(job.id, priority), false);
    }
    this.refresh();
  }

  private async interrupt(): Promise<void> {
    await Promise.all(this.jobs.filter((job) => job.status === "running").map((job) => this.act(api.cancel(job.id))));
  }

  private async clear(): Promise<void> {
    await Promise.all(this.jobs.filter((job) => job.status === "queued").map((job) => this.act(api.cancel(job.id))));
  }

  private async act(request: Promise<unknown>, refresh = true): Promise<void> {
    try {
      await request;
    } catch (error) {
      this.toast(String(error instanceof Error ? error.message : error));
    }
    if (refresh) this.refresh();
  }
}

function titleOf(job: JobView): string {
  const meta = job.workflow?.["meta"];
  const title = typeof meta === "object" && meta !== null ? (meta as Record<string, unknown>)["title"] : undefined;
  return typeof title === "string" ? title : job.id.slice(0, 8);
}
