/**
 * The Ray workers panel in the sidebar: shown only when the server dispatches to Ray
 * (`/api/system`'s `worker.kind == "ray"`), one row per worker actor and the pool's error as
 * a banner. It polls /api/system (which answers at once however busy the server is) every
 * 2 s while Ray is on; with the local worker it looks again only every 30 s, in case the
 * server was restarted with `--ray`. What to show is `workers-view.ts`; this only draws it.
 */

import { api } from "../api/client";
import { el } from "./dom";
import { type WorkerRow, type WorkersView, workersView } from "./workers-view";

const RAY_POLL_MS = 2_000;
const LOCAL_POLL_MS = 30_000;
const ERROR_POLL_MS = 5_000;

export class WorkersPanel {
  readonly element = el("section", { className: "panel workers-panel" });
  private readonly summary = el("span", { className: "workers-summary" });
  private readonly banner = el("p", { className: "workers-banner" });
  private readonly list = el("ul", { className: "workers-list" });

  constructor() {
    this.element.hidden = true;
    this.element.append(el("header", {}, el("h2", { text: "Ray workers" })), this.summary, this.banner, this.list);
    void this.poll();
  }

  private async poll(): Promise<void> {
    let next = ERROR_POLL_MS;
    try {
      const view = workersView(await api.system());
      this.render(view);
      next = view === null ? LOCAL_POLL_MS : RAY_POLL_MS;
    } catch {
      // The server restarting: keep what was shown and ask again soon.
    }
    window.setTimeout(() => void this.poll(), next);
  }

  render(view: WorkersView | null): void {
    this.element.hidden = view === null;
    if (view === null) return;
    this.summary.textContent = view.summary;
    this.banner.hidden = view.banner === null;
    this.banner.textContent = view.banner ?? "";
    this.list.replaceChildren(...view.rows.map(workerItem));
  }
}

function workerItem(row: WorkerRow): HTMLElement {
  const job = row.job === null
    ? el("span", { className: "worker-job idle", text: "no job" })
    : el("span", { className: "worker-job", text: row.job, title: row.jobTitle ?? "" });
  return el("li", { className: `worker-row ${row.state}`, data: { worker: row.name } },
    el("div", { className: "worker-line" },
      el("span", { className: `worker-dot ${row.dot}`, title: row.state }),
      el("span", { className: "worker-name", text: row.name }),
      el("span", { className: "worker-device", text: row.device }),
      el("span", { className: "worker-restarts", text: row.restarts, title: row.restartsTitle }),
    ),
    el("div", { className: "worker-line" },
      el("span", { className: "worker-host", text: row.host, title: row.hostTitle }),
      job,
    ),
    el("div", { className: "worker-models" },
      ...row.models.map((model) => el("span", { className: "model-chip", text: model, title: model })),
    ),
  );
}
