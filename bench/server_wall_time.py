"""A job's wall time through the server vs the same workflow on the engine in-process.

The txt2img example on the tiny checkpoint, both sides warm (a warm-up job each loads the
checkpoint into its engine's cache; torch has run once). Each repeat changes the seed, so the
sampler, decode and save run again while the checkpoint and prompts stay cached, on both
sides alike. Server: `latentloom serve` as a subprocess, POST /api/jobs?wait=true from a
keep-alive client (HTTP, validation, ledger, queue, worker thread, events; no websocket
clients). In-process: bench.common.cpu_engine's Engine.run. Interleaved; median of
--repeats. Target: ratio <= 1.05 on CPU.

    .venv/bin/python -m bench.server_wall_time [--repeats 5] [--steps 12] [--size 256] [--threads N]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import torch

from bench.common import cpu_engine, tiny_models
from bench.serving import median, post_job, running_server, txt2img


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads on both sides (default: torch's own)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    workflow = txt2img(sampler__steps=args.steps, latent__width=args.size, latent__height=args.size)
    seeds = itertools.count(1000)
    served, in_process, worker = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        models = tiny_models(root)
        engine = cpu_engine(root)
        with (
            running_server(models, root / "data", threads=args.threads) as server,
            httpx.Client(timeout=600) as client,
        ):

            def through_server() -> float:
                job = workflow.with_input("sampler", "seed", next(seeds))
                started = time.perf_counter()
                view = post_job(client, server.base_url, job, wait=True)["jobs"][0]
                elapsed = time.perf_counter() - started
                if view["status"] != "succeeded":
                    raise RuntimeError(f"the job did not succeed: {view}")
                worker.append(view["finished_at"] - view["started_at"])
                return elapsed

            def on_engine() -> float:
                job = workflow.with_input("sampler", "seed", next(seeds))
                started = time.perf_counter()
                engine.run(job)
                return time.perf_counter() - started

            through_server(), on_engine()  # warm-up: checkpoint cached, prompts encoded
            worker.clear()
            for _ in range(args.repeats):  # interleaved, so drift in load hits both alike
                served.append(through_server())
                in_process.append(on_engine())
    server_s, engine_s = median(served), median(in_process)
    print(
        f"job wall time, txt2img, tiny SD 1.x, {args.size}x{args.size}, {args.steps} steps, "
        f"warm, seed varied, CPU threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"  server, POST /api/jobs?wait=true   {server_s * 1000:8.1f} ms")
    print(f"    of which the worker ran the job  {median(worker) * 1000:8.1f} ms")
    print(f"  engine in-process (Engine.run)     {engine_s * 1000:8.1f} ms (baseline)")
    print(
        "  samples (ms), in run order: server "
        + " ".join(f"{s * 1000:.0f}" for s in served)
        + " | in-process "
        + " ".join(f"{s * 1000:.0f}" for s in in_process)
    )
    print(f"  ratio server / in-process: {server_s / engine_s:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
