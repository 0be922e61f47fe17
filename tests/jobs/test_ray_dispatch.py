"""Jobs on a local Ray instance (2 CPUs, 2 logical GPUs) with two worker actors and the tiny
checkpoints: affinity keeps loads down, a killed actor's job re-runs elsewhere with one
output, cancel reaches the actor, and the events equal the local worker's."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

# Imported before the instance starts, as a user's other libraries might: Ray reads its
# loopback switch at import, and a local instance must still bind loopback only.
import ray

from latentloom.engine.events import JobFinished, JobQueued, NodeProgress
from latentloom.engine.executor import Engine
from latentloom.jobs.dispatch import Dispatcher, ReportsStatus
from latentloom.jobs.ledger import JobStatus, Ledger
from latentloom.jobs.local_worker import LocalWorker
from latentloom.jobs.queue import JobQueue
from latentloom.jobs.ray_cluster import RayOptions
from latentloom.jobs.ray_dispatch import RayDispatcher
from latentloom.jobs.worker_protocol import WorkerConfig
from tests.jobs.support import Recorder
from tests.support import load_example

CHECKPOINTS = ("tiny-sd15.safetensors", "tiny-sdxl.safetensors")


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def txt2img(steps: int, checkpoint: str = CHECKPOINTS[0], seed: int = 1) -> dict[str, Any]:
    workflow = load_example("txt2img.json").with_input("sampler", "steps", steps)
    workflow = workflow.with_input("sampler", "seed", seed)
    return workflow.with_input("checkpoint", "checkpoint", checkpoint).to_json()


@dataclass
class Pool:
    ledger: Ledger
    recorder: Recorder
    dispatcher: RayDispatcher
    queue: JobQueue
    output_dir: Path

    def run(self, workflow: dict[str, Any]) -> str:
        return self.queue.submit(workflow)[0].id  # type: ignore[no-any-return]

    def idle_workers(self) -> int:
        return sum(w["state"] == "idle" for w in self.dispatcher.status()["workers"])


@pytest.fixture(scope="module")
def pool(
    ray_instance: str, tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> Iterator[Pool]:
    folder = tmp_path_factory.mktemp("ray")
    recorder = Recorder()
    config = WorkerConfig(
        model_dirs=(models_dir,),
        output_dir=folder / "output",
        input_dir=folder / "input",
        device="cpu",
    )
    with Ledger(folder / "jobs.sqlite") as ledger:
        dispatcher = RayDispatcher(
            ledger,
            config,
            recorder.publish,
            recorder.publish_preview,
            RayOptions(),
            poll_seconds=0.5,
        )
        dispatcher.start()
        pool = Pool(
            ledger,
            recorder,
            dispatcher,
            JobQueue(ledger, dispatcher, recorder.publish),
            config.output_dir,
        )
        try:
            wait_until(lambda: pool.idle_workers() == 2, 180, "two Ray workers warming up")
            yield pool
        finally:
            dispatcher.stop(timeout=30)


def outputs_of(pool: Pool, job_id: str) -> list[Path]:
    record = pool.ledger.get(job_id)
    assert record is not None
    entries = [e for report in record.outputs.values() for e in report.get("images", [])]
    return [pool.output_dir / e["subfolder"] / e["filename"] for e in entries]


def test_is_a_dispatcher_with_one_worker_per_logical_gpu(pool: Pool) -> None:
    assert isinstance(pool.dispatcher, Dispatcher) and isinstance(pool.dispatcher, ReportsStatus)
    status = pool.dispatcher.status()
    assert status["kind"] == "ray" and status["state"] == "idle" and status["ready"]
    workers = status["workers"]
    assert [w["name"] for w in workers] == ["ray-0", "ray-1"]
    assert sorted(gpu for w in workers for gpu in w["gpu_ids"]) == ["0", "1"]
    assert {w["device"] for w in workers} == {"cpu"}
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"  # a local instance: loopback


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def test_a_local_instance_listens_on_loopback_only(pool: Pool) -> None:
    """Every socket the Ray processes we started (GCS, raylet, object manager, agents, the
    worker actors) and this driver listen on is on loopback; checked once the actors run."""
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    listening: dict[str, set[str]] = {}
    for process in processes:
        try:
            name, sockets = process.name(), process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for sock in sockets:
            if sock.status == psutil.CONN_LISTEN or sock.type == socket.SOCK_DGRAM:
                listening.setdefault(name, set()).add(sock.laddr.ip)
    assert {"gcs_server", "raylet"} <= listening.keys(), listening
    assert any(name.startswith("ray::WorkerActor") for name in listening), listening
    assert set().union(*listening.values()) <= LOOPBACK, listening


def test_ten_jobs_over_two_checkpoints_each_worker_loading_each_at_most_once(pool: Pool) -> None:
    jobs = [pool.run(txt2img(2, CHECKPOINTS[i % 2], seed=i)) for i in range(10)]
    for job in jobs:
        assert isinstance(pool.recorder.ended(job, timeout=240), JobFinished)
    files = [path for job in jobs for path in outputs_of(pool, job)]
    assert len(files) == 10 and len(set(files)) == 10
    assert all(path.stat().st_size > 0 for path in files)
    counts = pool.dispatcher.load_counts()
    assert all(n <= 1 for loads in counts.values() for n in loads.values()), counts
    assert {name for loads in counts.values() for name in loads} == set(CHECKPOINTS)
    resident = {w["name"]: set(w["resident"]) for w in pool.dispatcher.status()["workers"]}
    assert set().union(*resident.values()) == set(CHECKPOINTS), resident


def test_cancel_reaches_the_worker_within_a_step(pool: Pool) -> None:
    job = pool.run(txt2img(400, seed=99))
    pool.recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == job, 120)
    assert pool.queue.cancel(job) is not None
    # The worker is free again long before the 400 steps could have run.
    wait_until(lambda: job not in pool.dispatcher.running(), 20, "the worker stopping")
    assert wait_until(lambda: pool.idle_workers() == 2, 20, "both workers idle")
    record = pool.ledger.get(job)
    assert record is not None and record.status is JobStatus.CANCELLED
    assert outputs_of(pool, job) == []


def test_the_event_sequence_equals_the_local_workers(
    pool: Pool, ledger: Ledger, engine: Engine
) -> None:
    workflow = txt2img(3, seed=5)
    local_recorder = Recorder()
    local = LocalWorker(ledger, engine, local_recorder.publish, local_recorder.publish_preview)
    local.start()
    try:
        # Warm as the Ray workers are: the checkpoint and prompts cached by an earlier run.
        warm = ledger.add(txt2img(3, seed=4))
        local.wake()
        assert isinstance(local_recorder.ended(warm.id, timeout=120), JobFinished)
        local_job = ledger.add(workflow)
        local.wake()
        assert isinstance(local_recorder.ended(local_job.id, timeout=120), JobFinished)
    finally:
        local.stop(timeout=30)
    warm_job = pool.run(txt2img(3, seed=4))
    assert isinstance(pool.recorder.ended(warm_job, timeout=120), JobFinished)
    job = pool.run(workflow)
    assert isinstance(pool.recorder.ended(job, timeout=120), JobFinished)

    def sequence(recorder: Recorder, job_id: str) -> list[tuple[str, str | None]]:
        return [(e.kind, getattr(e, "node", None)) for e in recorder.of(job_id)]  # type: ignore[attr-defined]

    # The Ray run also carries the JobQueued the queue announced; the rest is identical.
    assert sequence(pool.recorder, job)[1:] == sequence(local_recorder, local_job.id)


def test_a_killed_worker_s_job_runs_again_elsewhere_with_one_output(pool: Pool) -> None:
    job = pool.run(txt2img(60, seed=7))
    pool.recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == job, 120)
    first = next(w for w in pool.dispatcher.status()["workers"] if w["job"] == job)
    slot = next(s for s in pool.dispatcher._slots if s.name == first["name"])
    ray.kill(slot.handle, no_restart=True)
    end = pool.recorder.ended(job, timeout=240)
    assert isinstance(end, JobFinished)
    requeued = [e for e in pool.recorder.of(job) if isinstance(e, JobQueued)]
    assert len(requeued) == 2  # submitted, then re-queued after the death
    record = pool.ledger.get(job)
    assert record is not None and record.attempts == 2 and record.status is JobStatus.SUCCEEDED
    files = outputs_of(pool, job)
    assert len(files) == 1 and files[0].stat().st_size > 0
    written = sorted(p.name for p in pool.output_dir.glob("*.png"))
    assert len(written) == len(set(written))
    # The dead actor was replaced and takes work again, without a restart of anything.
    wait_until(lambda: pool.idle_workers() == 2, 180, "the replacement warming up")
    restarted = next(w for w in pool.dispatcher.status()["workers"] if w["name"] == first["name"])
    assert restarted["restarts"] == 1 and "ActorDiedError" in (restarted["last_exit"] or "")
