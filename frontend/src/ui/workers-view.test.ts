import { describe, expect, it } from "vitest";
import type { RayPoolStatus, RayWorkerStatus } from "./workers-view";
import { workersView } from "./workers-view";

function worker(name: string, changes: Partial<RayWorkerStatus>): RayWorkerStatus {
  return {
    name,
    state: "idle",
    pid: 4242,
    host: "render-box",
    device: "cuda:0",
    gpu_ids: ["0"],
    resident: [],
    loads: {},
    job: null,
    jobs_run: 0,
    restarts: 0,
    last_exit: null,
    warm_up_seconds: 3.5,
    cache_used_bytes: 0,
    ...changes,
  };
}

function system(pool: Partial<RayPoolStatus>): Record<string, unknown> {
  const worker: RayPoolStatus = {
    kind: "ray",
    state: "running",
    ready: true,
    address: "auto",
    error: null,
    running: [],
    restarts: 0,
    workers: [],
    ...pool,
  };
  return { version: "0.1.0", engine: "ready", queue: { queued: 0, running: 1 }, worker };
}

describe("Ray workers panel", () => {
  it("shows one row per worker: state dot, device and GPUs, host, models, job, restarts", () => {
    const view = workersView(
      system({
        workers: [
          worker("ray-0", {
            state: "busy",
            resident: ["tiny-sd15.safetensors", "tiny-sdxl.safetensors"],
            job: "0123456789abcdef",
          }),
          worker("ray-1", {
            host: null,
            pid: null,
            device: null,
            gpu_ids: [],
            state: "starting",
            restarts: 2,
            last_exit: "ActorDiedError: the actor died unexpectedly",
          }),
        ],
        restarts: 2,
        running: ["0123456789abcdef"],
      }),
    );
    expect(view).toEqual({
      summary: "1 of 2 ready, 1 busy · auto",
      banner: null,
      rows: [
        {
          name: "ray-0",
          state: "busy",
          dot: "busy",
          device: "cuda:0 · GPU 0",
          host: "render-box",
          hostTitle: "pid 4242",
          models: ["tiny-sd15.safetensors", "tiny-sdxl.safetensors"],
          job: "01234567",
          jobTitle: "0123456789abcdef",
          restarts: "↻ 0",
          restartsTitle: "never restarted",
        },
        {
          name: "ray-1",
          state: "starting",
          dot: "starting",
          device: "no device yet",
          host: "—",
          hostTitle: "not started",
          models: [],
          job: null,
          jobTitle: null,
          restarts: "↻ 2",
          restartsTitle: "last exit: ActorDiedError: the actor died unexpectedly",
        },
      ],
    });
  });

  it("puts the pool's error in a banner and marks dead and failed workers down", () => {
    const view = workersView(
      system({
        state: "failed",
        ready: false,
        address: "10.0.0.5:6379",
        error: "no Ray worker could start: ModuleNotFoundError: No module named 'latentloom'",
        workers: [worker("ray-0", { state: "failed" }), worker("ray-1", { state: "dead", gpu_ids: ["2", "3"] })],
      }),
    );
    expect(view?.banner).toBe("no Ray worker could start: ModuleNotFoundError: No module named 'latentloom'");
    expect(view?.summary).toBe("0 of 2 ready, 0 busy · 10.0.0.5:6379");
    expect(view?.rows.map((row) => [row.name, row.dot, row.device])).toEqual([
      ["ray-0", "down", "cuda:0 · GPU 0"],
      ["ray-1", "down", "cuda:0 · GPU 2, 3"],
    ]);
  });

  it("is hidden with the local worker process or before the server says", () => {
    expect(workersView({ engine: "ready", worker: { kind: "process", pid: 7, ready: true } })).toBeNull();
    expect(workersView({ engine: "starting", worker: null })).toBeNull();
    expect(workersView(undefined)).toBeNull();
  });
});
