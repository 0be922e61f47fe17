"""One Ray worker actor: the worker child's loop, driven by method calls instead of a pipe.

`RayDispatcher` makes this class a Ray actor (one per GPU, or per configured CPU slot). Its
constructor builds the engine exactly as the worker child does (`worker_main._build_engine`,
warm-up included) and wraps it in the same `worker_main._Worker`, whose `send` goes to a
queue here instead of a pipe. So a job runs through the same `_run`: the same events, the same
throttled previews, the same cancel token that `cancel()` sets from another actor thread
(the actor is threaded) while `run()` streams, so the sampler stops at its next step.

`run(request, attempt)` is a Ray streaming generator: it yields the protocol's `EventOut` and
`PreviewOut` as the job makes them, then `JobFiles` (a succeeded job's output files as bytes),
then `WorkerState` (what the engine now holds), and last the `Outcome`.

Outputs travel as bytes, not through a shared folder: the engine writes into a private
staging folder on the worker's machine, and only the server writes its output folder, and
only for the attempt it still counts (`ray_outputs.py`). A worker that dies mid-job leaves
nothing in the server's folder, so the re-run's files are the only ones. Shipped files stay
behind as empty files: the save nodes number new names after the names taken, and a cached
re-run reports the same names, which the server maps to where it put them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentloom.jobs import worker_main
from latentloom.jobs.affinity import MODEL_SUFFIXES, model_name, resident_names
from latentloom.jobs.worker_protocol import (
    EventOut,
    FromWorker,
    Outcome,
    PreviewOut,
    Ready,
    RunJob,
    WorkerConfig,
)

# --- worker -> server, besides the protocol's messages ---------------------------------------


@dataclass(frozen=True)
class JobFiles:
    """The files a succeeded run wrote, by path relative to the output folder."""

    job_id: str
    attempt: int
    files: dict[str, bytes]


@dataclass(frozen=True)
class WorkerState:
    """What a worker holds after a job: routing and /api/system read it."""

    pid: int
    host: str
    device: str
    gpu_ids: tuple[str, ...]
    resident: tuple[str, ...]  # model file names its engine's cache holds
    loads: dict[str, int]  # model file name -> times a loader node read it from disk
    cache_used_bytes: int
    jobs_run: int


class _QueueConnection:
    """What `_Worker` sends into: a queue that `run()` drains (it never receives here)."""

    def __init__(self) -> None:
        self.messages: queue.SimpleQueue[FromWorker] = queue.SimpleQueue()

    def send(self, message: FromWorker) -> None:
        self.messages.put(message)

    def close(self) -> None:
        pass


class WorkerActor:
    def __init__(self, config: WorkerConfig) -> None:
        import time

        from latentloom.jobs.worker_spawn import CHILD_ENVIRONMENT

        started = time.monotonic()
        for name, value in CHILD_ENVIRONMENT.items():  # before torch loads, as for the child
            os.environ.setdefault(name, value)
        self._staging = Path(tempfile.mkdtemp(prefix="latentloom-ray-outputs-"))
        config = dataclasses.replace(config, output_dir=self._staging)
        self._engine = worker_main._build_engine(config)
        self._connection = _QueueConnection()
        # The worker child's own loop object, so a job runs through the very same code.
        self._worker = worker_main._Worker(
            self._connection,  # type: ignore[arg-type]
            self._engine,
            config.previews_per_second,
        )
        self._run_lock = threading.Lock()  # one job at a time, as in the child process
        self._loads: Counter[str] = Counter()
        self._shipped: set[str] = set()
        self._jobs_run = 0
        settings = self._engine.settings
        names = {spec.id: spec.display_name for spec in self._engine.registry}
        dtype = str(settings.dtype).removeprefix("torch.")
        seconds = time.monotonic() - started
        self._ready = Ready(os.getpid(), str(settings.device), dtype, seconds, names)

    def ready(self) -> Ready:
        return self._ready

    def cancel(self, job_id: str) -> bool:
        self._worker._cancel(job_id)
        return True

    def run(self, request: RunJob, attempt: int) -> Iterator[Any]:
        with self._run_lock:
            thread = threading.Thread(
                target=self._worker._run, args=(request,), name="latentloom-ray-job", daemon=True
            )
            thread.start()
            while True:
                message = self._connection.messages.get()
                if isinstance(message, EventOut):
                    self._count_load(request.workflow, message.event_json)
                if isinstance(message, Outcome):
                    break
                if isinstance(message, EventOut | PreviewOut):
                    yield message
            thread.join()
            self._jobs_run += 1
            files = self._collect_files()
            if message.status == "succeeded":
                yield JobFiles(request.job_id, attempt, files)
            yield self.state()
            yield message

    def state(self) -> WorkerState:
        import ray

        return WorkerState(
            pid=os.getpid(),
            host=socket.gethostname(),
            device=self._ready.device,
            gpu_ids=tuple(str(gpu) for gpu in ray.get_gpu_ids()),
            resident=tuple(sorted(self._resident())),
            loads=dict(self._loads),
            cache_used_bytes=self._engine.cache.used_bytes,
            jobs_run=self._jobs_run,
        )

    def _count_load(self, workflow: dict[str, Any], event_json: str) -> None:
        """A loader node that started (not served from the cache) reads its files from disk."""
        event = json.loads(event_json)
        if event.get("kind") != "node.started":
            return
        node = workflow.get("nodes", {}).get(event.get("node"), {})
        for value in node.get("inputs", {}).values():
            if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
                self._loads[model_name(value)] += 1

    def _resident(self) -> frozenset[str]:
        """The files of the model handles the engine's cache holds (their `source`)."""
        # The cache has no public listing; reading a snapshot of its entries is safe here:
        # no job runs while `run()` asks (it holds the run lock).
        entries = list(self._engine.cache._entries.values())
        sources = [
            value.source
            for result, _ in entries
            for value in getattr(result, "outputs", {}).values()
            if isinstance(getattr(value, "source", None), str)
        ]
        return resident_names(sources)

    def _collect_files(self) -> dict[str, bytes]:
        """Files written since the last job, read and left empty (see the module docstring)."""
        files: dict[str, bytes] = {}
        for path in sorted(self._staging.rglob("*")):
            relative = path.relative_to(self._staging).as_posix()
            if not path.is_file() or path.is_symlink() or relative in self._shipped:
                continue
            files[relative] = path.read_bytes()
            path.write_bytes(b"")
            self._shipped.add(relative)
        return files
