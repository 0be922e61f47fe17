/**
 * What the Ray workers panel shows, computed from a GET /api/system answer: one row per
 * worker actor (state, device and GPU ids, host, resident models, current job, restarts with
 * the last exit) and the pool's error as a banner. Pure, so it is tested without a DOM;
 * `workers-panel.ts` only turns it into elements. Any other worker kind (the local child
 * process) gives null: the panel stays hidden.
 */

/** One worker as `/api/system`'s `worker.workers[*]` reports it (jobs/ray_slots.py SlotStatus). */
export interface RayWorkerStatus {
  readonly name: string;
  readonly state: "starting" | "idle" | "busy" | "dead" | "failed" | "stopped";
  readonly pid: number | null;
  readonly host: string | null;
  readonly device: string | null;
  readonly gpu_ids: readonly string[];
  readonly resident: readonly string[];
  readonly loads: Readonly<Record<string, number>>;
  readonly job: string | null;
  readonly jobs_run: number;
  readonly restarts: number;
  readonly last_exit: string | null;
  readonly warm_up_seconds: number | null;
  readonly cache_used_bytes: number;
}

/** `/api/system`'s `worker` section with Ray (jobs/ray_dispatch.py RayPoolStatus). */
export interface RayPoolStatus {
  readonly kind: "ray";
  readonly state: "starting" | "idle" | "running" | "failed" | "stopped";
  readonly ready: boolean;
  readonly address: string;
  readonly error: string | null;
  readonly running: readonly string[];
  readonly restarts: number;
  readonly workers: readonly RayWorkerStatus[];
}

/** The dot's colour class: working, waiting to work, or not able to. */
export type Dot = "idle" | "busy" | "starting" | "down";

export interface WorkerRow {
  readonly name: string;
  readonly state: RayWorkerStatus["state"];
  readonly dot: Dot;
  readonly device: string;
  readonly host: string;
  readonly hostTitle: string;
  readonly models: readonly string[];
  readonly job: string | null;
  readonly jobTitle: string | null;
  readonly restarts: string;
  readonly restartsTitle: string;
}

export interface WorkersView {
  readonly summary: string;
  readonly banner: string | null;
  readonly rows: readonly WorkerRow[];
}

const DOTS: Record<RayWorkerStatus["state"], Dot> = {
  idle: "idle",
  busy: "busy",
  starting: "starting",
  dead: "down",
  failed: "down",
  stopped: "down",
};

export function workersView(system: unknown): WorkersView | null {
  const worker = typeof system === "object" && system !== null ? (system as { worker?: unknown }).worker : undefined;
  if (typeof worker !== "object" || worker === null || (worker as { kind?: unknown }).kind !== "ray") return null;
  const pool = worker as RayPoolStatus;
  const busy = pool.workers.filter((w) => w.state === "busy").length;
  const ready = pool.workers.filter((w) => w.state === "idle" || w.state === "busy").length;
  return {
    summary: `${ready} of ${pool.workers.length} ready, ${busy} busy · ${pool.address}`,
    banner: pool.error,
    rows: pool.workers.map(workerRow),
  };
}

function workerRow(worker: RayWorkerStatus): WorkerRow {
  const gpus = worker.gpu_ids.length === 0 ? "" : ` · GPU ${worker.gpu_ids.join(", ")}`;
  return {
    name: worker.name,
    state: worker.state,
    dot: DOTS[worker.state],
    device: `${worker.device ?? "no device yet"}${gpus}`,
    host: worker.host ?? "—",
    hostTitle: worker.pid === null ? "not started" : `pid ${worker.pid}`,
    models: worker.resident,
    // Job ids are long: the row shows their start, the tooltip the whole id.
    job: worker.job === null ? null : worker.job.slice(0, 8),
    jobTitle: worker.job,
    restarts: `↻ ${worker.restarts}`,
    restartsTitle: worker.last_exit === null ? "never restarted" : `last exit: ${worker.last_exit}`,
  };
}
