"""The default dispatcher: the engine runs in one child process that the server outlives.

One supervisor thread in the server starts the worker (`worker_main.serve`, "spawn"
context), waits for its `Ready`, then claims jobs from the ledger one at a time, sends each
as a `RunJob` and turns what comes back into ledger writes and published events through a
`JobReporter` — the same reporter as the in-process `LocalWorker`, so a client sees the
same event sequence from either. Only this process touches the ledger. Sampling happens in
the child, off the server's GIL; models stay resident there between jobs.

When the worker dies mid-job (SIGKILL, the out-of-memory killer, a segfault in a kernel),
the pipe reports end-of-file at once; the supervisor reaps the process to read how it
ended, re-queues the job or fails it by the ledger's attempt rules with the cause
("worker died: killed by signal 9 (SIGKILL) while running node "sampler" (KSampler), on
attempt 2 of 2"), and starts a fresh worker before it claims the next job. A worker that
dies while idle is replaced the same way; should a job have been claimed in the moment
before its death was noticed, that job goes back uncounted (once: a job that kills every
worker before its first event still runs out of attempts). One that cannot build its
engine is not restarted: every job claimed afterwards fails with the reason, as with
`LocalWorker`.

`stop()` cancels the running job (it goes back to the queue, not counted as an attempt) and
tells the worker to exit; a worker that does not stop within the timeout is killed.
"""

from __future__ import annotations

import logging
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from latentloom.engine.events import Event, NodeFailed, NodeFinished, NodeStarted
from latentloom.jobs.dispatch import EventPublisher, PreviewPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.records import JobRecord
from latentloom.jobs.reporter import JobReporter
from latentloom.jobs.worker_protocol import (
    CancelJob,
    EventOut,
    FromWorker,
    Outcome,
    PreviewOut,
    Ready,
    RunJob,
    Shutdown,
    StartupFailed,
    ToWorker,
    WorkerConfig,
    decode_latent,
    describe_exit,
)
from latentloom.jobs.worker_spawn import SpawnedWorker, spawn_worker

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken

logger = logging.getLogger(__name__)
_EVENTS: TypeAdapter[Any] = TypeAdapter(Event)
LIVENESS_SECONDS = 0.5  # how often an idle supervisor checks that its worker still lives
MAX_START_FAILURES = 3  # a worker dying this many times in a row while starting is given up


class WorkerProcess:
    def __init__(
        self,
        ledger: Ledger,
        config: WorkerConfig,
        publish: EventPublisher,
        publish_preview: PreviewPublisher,
        *,
        poll_seconds: float = 2.0,
        start_timeout: float = 600.0,
        first_worker: SpawnedWorker | None = None,
    ) -> None:
        """`first_worker`: a child spawned earlier with this `config`, adopted as the first
        worker instead of spawning one (`server/early_worker.py`)."""
        if first_worker is not None and first_worker.config != config:
            raise ValueError("the first worker was spawned with another configuration")
        self.ledger, self.config = ledger, config
        self._first_worker = first_worker
        self._publish, self._publish_preview = publish, publish_preview
        self._poll_seconds, self._start_timeout = poll_seconds, start_timeout
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        # Guards `_current` and what status() reads; claiming and registering the token
        # happen under it, so a cancel() right after a claim still finds the token.
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # the supervisor, cancel() and stop() all send
        self._current: tuple[str, CancelToken] | None = None
        self._thread: threading.Thread | None = None
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._ready: Ready | None = None
        self._error: str | None = None  # the engine cannot start: jobs fail with this
        self._started = 0  # worker processes started so far
        self._started_at: float | None = None  # wall clock when the current process spawned
        self._start_failures = 0
        self._last_exit: str | None = None
        self._cache_used_bytes = 0
        self._device_memory: dict[str, Any] | None = None  # residency after the last job
        self._node_names: dict[str, str] = {}  # type id -> display name, from the last Ready
        self._handed_back: set[str] = set()  # jobs re-queued uncounted once already
        self.last_start_seconds: float | None = None  # from spawn to Ready, last time

    # --- Dispatcher ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this WorkerProcess was already started; make a new one")
        self._thread = threading.Thread(
            target=self._loop, name="latentloom-worker-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._lock:
            self._stopping.set()
            if self._current is not None:
                self._current[1].cancel()
            unadopted, self._first_worker = self._first_worker, None
        if unadopted is not None:  # stopped before its supervisor took it over
            unadopted.end()
        self._send(Shutdown())
        self._wakeup.set()
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():  # the job did not stop in time: end the worker
            process = self._process
            if process is not None:
                process.kill()
            self._thread.join(10.0)

    def wake(self) -> None:
        self._wakeup.set()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            if self._current is None or self._current[0] != job_id:
                return False
            self._current[1].cancel()
        self._send(CancelJob(job_id))
        return True

    def running(self) -> set[str]:
        with self._lock:
            return {self._current[0]} if self._current is not None else set()

    def status(self) -> dict[str, Any]:
        """For /api/system: the worker's pid, whether it is warm, and how often it restarted."""
        with self._lock:
            ready, process = self._ready, self._process
            return {
                "kind": "process",
                "pid": process.pid if process is not None else None,
                "ready": ready is not None,
                "state": self._state(),
                "restarts": max(self._started - 1, 0),
                "started_at": self._started_at if process is not None else None,
                "running": self._current[0] if self._current is not None else None,
                "error": self._error,
                "last_exit": self._last_exit,
                "warm_up_seconds": round(ready.seconds, 3) if ready is not None else None,
                "cache_used_bytes": self._cache_used_bytes,
                "device_memory": self._device_memory,
            }

    def _state(self) -> str:
        if self._error is not None:
            return "failed"
        if self._process is None:
            return "stopped" if self._stopping.is_set() else "starting"
        if self._ready is None:
            return "starting"
        return "running" if self._current is not None else "idle"

    # --- the supervisor thread -----------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                if self._process is not None and not self._process.is_alive():
                    self._forget_worker()  # it died while idle
                if self._process is None and self._error is None and not self._stopping.is_set():
                    self._start_worker()
                # Cleared before looking, so a wake() after an empty claim is not lost.
                self._wakeup.clear()
                claimed = self._claim()
                if claimed is None:
                    if self._stopping.is_set():
                        return
                    self._idle()
                    continue
                record, token = claimed
                try:
                    self._run(record, token)
                except Exception:  # the ledger itself failed; keep serving the queue
                    logger.exception("job %s could not be recorded", record.id)
                finally:
                    with self._lock:
                        self._current = None
        finally:
            self._end_worker()

    def _idle(self) -> None:
        """Wait for a wake(), `poll_seconds`, or the worker's death, whichever comes first."""
        deadline = time.monotonic() + self._poll_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._wakeup.wait(min(remaining, LIVENESS_SECONDS)):
                return
            process = self._process
            if process is not None and not process.is_alive():
                return

    def _claim(self) -> tuple[JobRecord, CancelToken] | None:
        from latentloom.engine.context import CancelToken

        process = self._process
        if self._error is None and (process is None or not process.is_alive()):
            return None  # the loop starts a worker first
        with self._lock:
            if self._stopping.is_set() or (self._error is None and self._ready is None):
                return None
            record = self.ledger.claim_next()
            if record is None:
                return None
            token = CancelToken()
            self._current = (record.id, token)
            return record, token

    def _run(self, record: JobRecord, token: CancelToken) -> None:
        reporter = JobReporter(
            self.ledger, record.id, self._publish, self._publish_preview, cancel=token
        )
        reporter.started()
        if self._error is not None:
            reporter.failed(f"internal error: {self._error}")
            return
        running: NodeStarted | None = None  # the node the worker is in, to name it if it dies
        began = False  # whether the worker said anything about this job
        if not self._send(RunJob(record.id, record.workflow)):
            self._worker_died(record, reporter, running, began)
            return
        while (message := self._receive()) is not None:
            began = True
            if isinstance(message, EventOut):
                event: BaseModel = _EVENTS.validate_json(message.event_json)
                if isinstance(event, NodeStarted):
                    running = event
                elif isinstance(event, NodeFinished | NodeFailed) and running is not None:
                    running = None
                reporter.on_event(event)
            elif isinstance(message, PreviewOut):
                reporter.on_preview(_preview(message))
            elif isinstance(message, Outcome):
                with self._lock:
                    self._cache_used_bytes = message.cache_used_bytes
                    self._device_memory = message.device_memory
                reporter.finish(message, stopping=self._stopping.is_set())
                return
        self._worker_died(record, reporter, running, began)

    def _worker_died(
        self, record: JobRecord, reporter: JobReporter, running: NodeStarted | None, began: bool
    ) -> None:
        cause = self._forget_worker()
        if self._stopping.is_set():  # stop() ended it: the job goes back, not counted
            reporter.interrupted()
            return
        if not began and record.id not in self._handed_back:
            # It died before it began this job (killed while idle, unnoticed until now): not
            # the job's doing, so once per job it goes back without counting the attempt.
            self._handed_back.add(record.id)
            reporter.handed_back(record.client_id)
            logger.warning("the worker died (%s) before job %s began; re-queued", cause, record.id)
            return
        error = f"worker died: {cause}"
        if running is not None:
            name = self._node_names.get(running.type, running.type)
            error += f' while running node "{running.node}" ({name})'
        error += f", on attempt {record.attempts} of {record.max_attempts}"
        node = running.node if running is not None else None
        changed = reporter.worker_died(error, node, running.type if running is not None else "")
        if changed is not None:
            logger.warning("job %s is now %s: %s", record.id, changed.status, error)

    # --- the child process ---------------------------------------------------------------

    def _start_worker(self) -> None:
        with self._lock:
            first, self._first_worker = self._first_worker, None
        spawned = first or spawn_worker(self.config)
        process, ours, begun = spawned.process, spawned.connection, spawned.begun
        with self._lock:
            self._process, self._connection, self._ready = process, ours, None
            self._started += 1
            self._started_at = spawned.started_at
        message = self._await_ready(ours, process, begun)
        if isinstance(message, Ready):
            with self._lock:
                self._ready, self._start_failures = message, 0
            self._node_names = message.node_names
            self.last_start_seconds = time.monotonic() - begun
            logger.info("worker process %s is ready (%.1f s)", message.pid, message.seconds)
        elif isinstance(message, StartupFailed):
            self._give_up(f"the engine could not start in the worker process: {message.error}")
        elif not self._stopping.is_set():
            self._start_failures += 1
            cause = f"the worker process {self._forget_worker()} while starting"
            if self._start_failures >= MAX_START_FAILURES:
                self._give_up(f"{cause}, {self._start_failures} times in a row")
            else:
                logger.warning("%s; starting another", cause)
                self._stopping.wait(1.0)

    def _await_ready(
        self, connection: Connection, process: BaseProcess, begun: float
    ) -> FromWorker | None:
        """The worker's first message; None when it died, stopping began, or time ran out."""
        while not self._stopping.is_set():
            if connection.poll(0.1):
                try:
                    return connection.recv()  # type: ignore[no-any-return]
                except (EOFError, OSError):
                    return None
            if time.monotonic() - begun > self._start_timeout:
                logger.error("the worker process did not start in %.0f s", self._start_timeout)
                process.kill()
                return None
        return None

    def _give_up(self, error: str) -> None:
        logger.error("%s; jobs will fail until the server restarts", error)
        self._end_worker()
        with self._lock:
            self._error = error

    def _receive(self) -> FromWorker | None:
        connection = self._connection
        if connection is None:
            return None
        try:
            return connection.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            return None

    def _send(self, message: ToWorker) -> bool:
        connection = self._connection
        if connection is None:
            return False
        with self._send_lock:
            try:
                connection.send(message)
            except (OSError, ValueError):  # ValueError: already closed here
                return False
        return True

    def _forget_worker(self) -> str:
        """Reap a worker that died (or is dying) and forget it; returns how it ended."""
        process = self._process
        exitcode = None
        if process is not None:
            process.join(5.0)
            if process.is_alive():  # it closed the pipe but lives on: end it
                process.kill()
                process.join(5.0)
            exitcode = process.exitcode
        cause = describe_exit(exitcode)
        self._close_connection()
        with self._lock:
            self._process, self._ready, self._last_exit = None, None, cause
        return cause

    def _end_worker(self) -> None:
        """Ask a warm worker to exit (a starting one is killed: it holds nothing yet)."""
        process = self._process
        if process is None:
            return
        if self._ready is None or not self._send(Shutdown()):
            process.kill()
        process.join(10.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)
        self._close_connection()
        with self._lock:
            self._process, self._ready = None, None

    def _close_connection(self) -> None:
        with self._send_lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = None


def _preview(message: PreviewOut) -> Any:
    from latentloom.engine.events import Preview

    latent = decode_latent(message.shape, message.data)
    return Preview(message.node, message.step, latent, message.family)
