"""Ray workers on this machine: jobs/minute with 1 vs 2 workers, model loads per job under
alternating checkpoints with and without affinity, and event latency against the local worker.

One local Ray instance (2 CPUs, 2 logical GPUs), tiny checkpoints. Loads per job use a cache
budget that holds one checkpoint, so a worker switching checkpoints reads from disk again.
Latency: from queueing a fully cached job (every node served from the cache) to its
`job.finished` event here, i.e. the dispatch and event path alone, Ray vs the worker child.
Expect < 2x jobs/minute from 2 workers on 2 busy cores.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from latentloom.engine.events import JobFinished
from latentloom.jobs.dispatch import Dispatcher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.queue import JobQueue
from latentloom.jobs.ray_cluster import RayOptions, connect, disconnect
from latentloom.jobs.ray_dispatch import RayDispatcher
from latentloom.jobs.worker_process import WorkerProcess
from latentloom.jobs.worker_protocol import WorkerConfig
from latentloom.models.tiny import make_tiny_checkpoint
from tests.jobs.support import Recorder
from tests.support import load_example

CHECKPOINTS = ("a.safetensors", "b.safetensors")
JOBS = 12


def workflow(checkpoint: str, seed: int, steps: int = 4) -> dict[str, Any]:
    document = load_example("txt2img.json").with_input("sampler", "steps", steps)
    document = document.with_input("sampler", "seed", seed)
    return document.with_input("checkpoint", "checkpoint", checkpoint).to_json()


def wait(check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not warm up")
        time.sleep(0.1)


def pool(
    folder: Path, models: Path, options: RayOptions | None, cache_bytes: int | None = None
) -> tuple[Ledger, Recorder, Dispatcher, JobQueue]:
    budget = {"memory_budget": cache_bytes} if cache_bytes else {}
    config = WorkerConfig((models,), folder / "out", folder / "in", "cpu", cost_budget=budget)
    ledger, recorder = Ledger(folder / f"jobs-{time.monotonic_ns()}.sqlite"), Recorder()
    dispatcher: Any
    if options is None:
        dispatcher = WorkerProcess(ledger, config, recorder.publish, recorder.publish_preview)
        dispatcher.start()
        wait(lambda: dispatcher.status()["ready"])
    else:
        dispatcher = RayDispatcher(
            ledger, config, recorder.publish, recorder.publish_preview, options, poll_seconds=0.5
        )
        dispatcher.start()
        wanted = options.workers or 2
        wait(lambda: sum(w["state"] == "idle" for w in dispatcher.status()["workers"]) == wanted)
    return ledger, recorder, dispatcher, JobQueue(ledger, dispatcher, recorder.publish)


def run_all(recorder: Recorder, queue: JobQueue, documents: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    jobs = [queue.submit(document)[0].id for document in documents]
    for job in jobs:
        assert isinstance(recorder.ended(job, timeout=600), JobFinished)
    return time.perf_counter() - started


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    models = folder / "models"
    (models / "checkpoints").mkdir(parents=True)
    for seed, name in enumerate(CHECKPOINTS):
        make_tiny_checkpoint("sd15", models / "checkpoints" / name, seed=seed)
    connect(RayOptions(num_cpus=2, num_gpus=2))
    try:
        alternating = [workflow(CHECKPOINTS[i % 2], i) for i in range(JOBS)]
        rates = {}
        for workers in (1, 2):
            _ledger, recorder, dispatcher, queue = pool(folder, models, RayOptions(workers=workers))
            run_all(recorder, queue, [workflow(CHECKPOINTS[0], 100)])  # loads, first kernels
            seconds = run_all(recorder, queue, [workflow(CHECKPOINTS[0], i) for i in range(JOBS)])
            rates[workers] = JOBS / seconds * 60
            dispatcher.stop(timeout=30)
        print(
            f"jobs/minute: 1 worker {rates[1]:.1f}, 2 workers {rates[2]:.1f} "
            f"(x{rates[2] / rates[1]:.2f})"
        )
        one_model = 40 * 2**20  # the tiny checkpoint's modules fit, two do not
        for affinity in (True, False):
            options = RayOptions(workers=2, affinity=affinity)
            _ledger, recorder, dispatcher, queue = pool(folder, models, options, one_model)
            run_all(recorder, queue, alternating)
            loads = sum(sum(v.values()) for v in dispatcher.load_counts().values())  # type: ignore[attr-defined,misc]
            print(f"affinity {'on ' if affinity else 'off'}: {loads / JOBS:.2f} loads per job")
            dispatcher.stop(timeout=30)
        latencies = {}
        choices: list[tuple[str, RayOptions | None]] = [
            ("ray", RayOptions(workers=1)),
            ("process", None),
        ]
        for name, choice in choices:
            _ledger, recorder, dispatcher, queue = pool(folder, models, choice)
            document = workflow(CHECKPOINTS[0], 7)
            run_all(recorder, queue, [document])
            latencies[name] = statistics.median(
                run_all(recorder, queue, [document]) for _ in range(10)
            )
            dispatcher.stop(timeout=30)
        print(
            f"cached job, queue -> finished: Ray {latencies['ray'] * 1000:.1f} ms, worker "
            f"process {latencies['process'] * 1000:.1f} ms "
            f"(x{latencies['ray'] / latencies['process']:.2f})"
        )
    finally:
        disconnect()


if __name__ == "__main__":
    main()
