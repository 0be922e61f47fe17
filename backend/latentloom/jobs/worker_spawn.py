"""Starting a worker child process: the one place that spawns `worker_main.serve`.

`WorkerProcess` spawns its children here, and so can `latentloom serve` before it imports
the web stack (`server/early_worker.py`): the child then imports torch, diffusers and
transformers while this process is still importing FastAPI, instead of after its socket is
up, and `WorkerProcess` adopts that first child rather than spawning another.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from latentloom.jobs.worker_protocol import WorkerConfig

# OpenMP threads that wait passively: spinning ones (the default when a process has one
# team) hold a core while they wait, and on a busy machine a tiny job ran 40x slower so.
CHILD_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}
_ENVIRONMENT_LOCK = threading.Lock()


@dataclass(frozen=True)
class SpawnedWorker:
    """A started child and this process's end of its pipe, before its `Ready`."""

    config: WorkerConfig
    process: BaseProcess
    connection: Connection
    begun: float  # time.monotonic() at spawn: start-up timeouts and durations count from it
    started_at: float  # time.time() at spawn: jobs finished before it ran in another child

    def end(self) -> None:
        """For a child nobody took over: it holds no job, so it is killed, not asked."""
        self.process.kill()
        self.process.join(5.0)
        self.connection.close()


def spawn_worker(config: WorkerConfig) -> SpawnedWorker:
    from latentloom.jobs import worker_main

    context = multiprocessing.get_context("spawn")  # never fork a process holding torch
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(
        target=worker_main.serve, args=(theirs, config), name="latentloom-worker", daemon=True
    )
    begun, started_at = time.monotonic(), time.time()
    with _child_environment():
        process.start()
    theirs.close()  # the child holds its end; ours then reads EOF the moment it dies
    return SpawnedWorker(config, process, ours, begun, started_at)


@contextmanager
def _child_environment() -> Iterator[None]:
    """`CHILD_ENVIRONMENT` in os.environ while a worker spawns (it inherits it), unless set."""
    with _ENVIRONMENT_LOCK:
        added = {k: v for k, v in CHILD_ENVIRONMENT.items() if k not in os.environ}
        os.environ.update(added)
        try:
            yield
        finally:
            for name in added:
                os.environ.pop(name, None)
