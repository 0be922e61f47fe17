"""The worker child process: builds an engine once, then runs the jobs the server sends.

`serve(connection, config)` is the target `WorkerProcess` starts with the "spawn" context
(a fresh interpreter: forking a process that holds torch threads or a CUDA context is
unsafe). It warms up first — imports, node registry, engine — and says `Ready`; the
engine's output cache then keeps models resident from one job to the next.

Two threads share the pipe's two directions. A job thread runs one job at a time through
`run_job` and sends its events, throttled previews and outcome. The main thread reads
requests as they arrive, so a `CancelJob` sets the running job's token at once and the
sampler stops at its next step. The worker's OpenMP threads wait passively
(`OMP_WAIT_POLICY`, set by `spawn_worker` when the user has not: see `CHILD_ENVIRONMENT`).
When the server's end of the pipe closes without a `Shutdown` (the server was killed),
nobody is left to report to: the reader ends the process at once, and the server's ledger
re-queues the job when it starts again. SIGINT is ignored: a Ctrl+C in the terminal reaches
the whole process group, and the server decides when its worker stops.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from pydantic import BaseModel

from latentloom.jobs.run_job import run_job
from latentloom.jobs.worker_protocol import (
    CancelJob,
    EventOut,
    FromWorker,
    PreviewOut,
    Ready,
    RunJob,
    Shutdown,
    StartupFailed,
    WorkerConfig,
    encode_latent,
)

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken
    from latentloom.engine.events import Preview
    from latentloom.engine.executor import Engine

logger = logging.getLogger(__name__)


def serve(connection: Connection, config: WorkerConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    try:
        engine = _build_engine(config)
    except Exception as error:
        logger.exception("the engine could not start in the worker process")
        connection.send(StartupFailed(f"{type(error).__name__}: {error}"))
        connection.close()
        return
    if config.memory_limit_bytes is not None:
        _limit_address_space(config.memory_limit_bytes)
    worker = _Worker(connection, engine, config.previews_per_second)
    names = {spec.id: spec.display_name for spec in engine.registry}
    settings = engine.settings
    dtype = str(settings.dtype).removeprefix("torch.")
    seconds = time.monotonic() - started
    worker.send(Ready(os.getpid(), str(settings.device), dtype, seconds, names))
    worker.serve()


def _build_engine(config: WorkerConfig) -> Engine:
    from latentloom.engine.setup import make_engine
    from latentloom.warmup import warm_up_engine_stack

    engine = make_engine(
        model_dirs=config.model_dirs,
        output_dir=config.output_dir,
        input_dir=config.input_dir,
        device=config.device,
        node_packs=config.node_packs,
        fast_path=config.fast_path,
        **config.cost_budget,
    )
    # Before `Ready`: the first job finds diffusers, tokenizers and kernels warm (warmup.py).
    warm_up_engine_stack(engine.settings.device, engine.settings.dtype)
    return engine


def _limit_address_space(extra_bytes: int) -> None:
    """RLIMIT_AS at what the warm process maps plus `extra_bytes`: allocations beyond fail."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = mapped + extra_bytes
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _Worker:
    def __init__(self, connection: Connection, engine: Engine, previews_per_second: float) -> None:
        self._connection, self._engine = connection, engine
        self._preview_interval = 1.0 / previews_per_second
        self._jobs: queue.SimpleQueue[RunJob | None] = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        # Guards `_current` and `_cancelled`: a cancel may arrive before its job starts.
        self._lock = threading.Lock()
        self._current: tuple[str, CancelToken] | None = None
        self._cancelled: set[str] = set()

    def send(self, message: FromWorker) -> None:
        with self._send_lock:
            self._connection.send(message)

    def serve(self) -> None:
        jobs = threading.Thread(target=self._run_jobs, name="latentloom-worker-jobs", daemon=True)
        jobs.start()
        self._read()
        jobs.join()
        self._connection.close()

    def _run_jobs(self) -> None:
        while (request := self._jobs.get()) is not None:
            self._run(request)

    def _read(self) -> None:
        """Until `Shutdown`: queue jobs, and cancel them the moment a cancel arrives."""
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone; see the module docstring
            if isinstance(message, RunJob):
                self._jobs.put(message)
            elif isinstance(message, CancelJob):
                self._cancel(message.job_id)
            elif isinstance(message, Shutdown):
                self._cancel(None)
                self._jobs.put(None)
                return

    def _cancel(self, job_id: str | None) -> None:
        """Cancel `job_id` (None: whatever runs), now if it runs, else when it starts."""
        with self._lock:
            if self._current is not None and job_id in (None, self._current[0]):
                self._current[1].cancel()
            elif job_id is not None:
                self._cancelled.add(job_id)

    def _run(self, request: RunJob) -> None:
        from latentloom.engine.context import CancelToken

        token = CancelToken()
        with self._lock:
            if request.job_id in self._cancelled:
                self._cancelled.discard(request.job_id)
                token.cancel()
            self._current = (request.job_id, token)
        job_id = request.job_id
        last_preview = float("-inf")

        def on_event(event: BaseModel) -> None:
            self.send(EventOut(job_id, event.model_dump_json()))

        def on_preview(preview: Preview) -> None:
            nonlocal last_preview
            now = time.monotonic()
            if now - last_preview < self._preview_interval:
                return  # throttled here, so skipped previews cost no copy and no pipe write
            last_preview = now
            shape, data = encode_latent(preview.latent)
            self.send(PreviewOut(job_id, preview.node, preview.step, preview.family, shape, data))

        try:
            outcome = run_job(
                self._engine,
                job_id,
                request.workflow,
                on_event=on_event,
                on_preview=on_preview,
                cancel=token,
            )
        finally:
            with self._lock:
                self._current = None
        self.send(
            dataclasses.replace(
                outcome,
                cache_used_bytes=self._engine.cache.used_bytes,
                device_memory=self._engine.residency.status(),
            )
        )
