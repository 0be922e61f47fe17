"""A job's wall time in the worker child process vs the in-process LocalWorker, and how long
the first job takes after the worker is killed.

Both dispatchers run on their own ledger in this process, on the txt2img example with the
tiny checkpoint, both warm (a warm-up job loads the checkpoint into each engine's cache).
Each timed job changes the seed, so sampler, decode and save run again on both sides alike;
the jobs alternate between the two dispatchers so drift in the machine's load hits both.
A job's wall time runs from `Ledger.add` + `wake()` to its `job.finished` event reaching
the publisher (for the child: through the pipe, the JSON events and the reporter). Target:
median ratio <= 1.02.

Restart: SIGKILL the idle worker, queue a job at once, and time until it finishes (the
supervisor notices the death, spawns a fresh interpreter that imports torch, builds the
registry and engine, then the job loads its checkpoint again), against a warm job.

    .venv/bin/python -m bench.worker_process [--repeats 9] [--restarts 3] [--steps 12] [--size 256]
        [--threads N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from bench.common import WORKFLOWS, cpu_engine, tiny_models
from bench.serving import txt2img
from latentloom.engine.events import JobCancelled, JobFailed, JobFinished
from latentloom.jobs.dispatch import Dispatcher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.local_worker import LocalWorker
from latentloom.jobs.worker_process import WorkerProcess
from latentloom.jobs.worker_protocol import WorkerConfig


class Ends:
    """A publisher that lets the benchmark wait for a job's last event."""

    def __init__(self) -> None:
        self._ended: dict[str, BaseModel] = {}
        self._changed = threading.Condition()

    def publish(self, event: BaseModel) -> None:
        if isinstance(event, JobFinished | JobFailed | JobCancelled):
            with self._changed:
                self._ended[str(event.job)] = event
                self._changed.notify_all()

    def publish_preview(self, preview: Any) -> None:
        pass

    def wait(self, job_id: str, timeout: float = 600) -> BaseModel:
        with self._changed:
            if not self._changed.wait_for(lambda: job_id in self._ended, timeout):
                raise TimeoutError(f"job {job_id} did not end in {timeout} s")
            return self._ended[job_id]


def timed_job(
    ledger: Ledger, dispatcher: Dispatcher, ends: Ends, workflow: dict[str, Any]
) -> float:
    started = time.perf_counter()
    job = ledger.add(workflow)
    dispatcher.wake()
    end = ends.wait(job.id)
    elapsed = time.perf_counter() - started
    if not isinstance(end, JobFinished):
        raise RuntimeError(f"the job did not succeed: {end}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads on both sides (default: torch's own)"
    )
    args = parser.parse_args()
    if args.threads is not None:  # the child reads it when it imports torch
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    base = txt2img(sampler__steps=args.steps, latent__width=args.size, latent__height=args.size)
    seeds = itertools.count(1000)

    def next_job() -> dict[str, Any]:
        return base.with_input("sampler", "seed", next(seeds)).to_json()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        models = tiny_models(root)
        local_ends, child_ends = Ends(), Ends()
        with Ledger(root / "local.sqlite") as local_ledger, Ledger(root / "child.sqlite") as ledger:
            local = LocalWorker(
                local_ledger, cpu_engine(root), local_ends.publish, local_ends.publish_preview
            )
            config = WorkerConfig(
                model_dirs=(models,),
                output_dir=root / "output-child",
                input_dir=WORKFLOWS / "inputs",
                device="cpu",
            )
            child = WorkerProcess(ledger, config, child_ends.publish, child_ends.publish_preview)
            local.start()
            child.start()
            try:
                timed_job(local_ledger, local, local_ends, next_job())  # warm-up
                timed_job(ledger, child, child_ends, next_job())
                in_process, in_child = [], []
                for _ in range(args.repeats):
                    in_child.append(timed_job(ledger, child, child_ends, next_job()))
                    in_process.append(timed_job(local_ledger, local, local_ends, next_job()))
                after_restart, warm_up = [], []
                for _ in range(args.restarts):
                    os.kill(child.status()["pid"], signal.SIGKILL)
                    after_restart.append(timed_job(ledger, child, child_ends, next_job()))
                    warm_up.append(child.last_start_seconds or float("nan"))
            finally:
                local.stop(timeout=60)
                child.stop(timeout=60)
    report(args, in_child, in_process, after_restart, warm_up)


def report(
    args: argparse.Namespace,
    in_child: list[float],
    in_process: list[float],
    after_restart: list[float],
    warm_up: list[float],
) -> None:
    child_s, local_s = statistics.median(in_child), statistics.median(in_process)
    print(
        f"job wall time, txt2img, tiny SD 1.x, {args.size}x{args.size}, {args.steps} steps, "
        f"warm, seed varied, CPU threads {torch.get_num_threads()}, median of {args.repeats}, "
        "alternating"
    )
    print(f"  worker process (WorkerProcess)     {child_s * 1000:8.1f} ms")
    print(f"  in-process thread (LocalWorker)    {local_s * 1000:8.1f} ms (baseline)")
    print(
        "  samples (ms), in run order: process "
        + " ".join(f"{s * 1000:.0f}" for s in in_child)
        + " | thread "
        + " ".join(f"{s * 1000:.0f}" for s in in_process)
    )
    pairs = statistics.median(c / t for c, t in zip(in_child, in_process, strict=True))
    print(f"  ratio process / in-process: {child_s / local_s:.3f} (target <= 1.02)")
    print(f"  median of the pairwise ratios: {pairs:.3f} (each pair ran back to back)")
    restart_s = statistics.median(after_restart)
    print(f"first job after SIGKILL of the idle worker, median of {args.restarts}")
    print(f"  kill -> job finished               {restart_s * 1000:8.1f} ms")
    print(f"    of which the new worker warmed up {statistics.median(warm_up) * 1000:7.1f} ms")
    print(f"  ratio to a warm job: {restart_s / child_s:.1f}")


if __name__ == "__main__":
    main()
