"""A dispatcher in this process: one background thread running jobs one at a time.

The thread sleeps on an event that `wake()` and `stop()` set (and wakes on its own every
`poll_seconds`, so jobs written to the ledger by another process are found too), claims the
head of the queue, and runs it on the engine (`run_job`, the body every worker loop shares),
reporting through a `JobReporter`. The server uses it when `worker = "thread"`; by default it
runs jobs in a child process instead (`worker_process.py`).

The engine may be given as a factory, called once on the worker thread, and this module
imports nothing that loads torch until that thread runs: the server's socket comes up first
and models load behind it. If the factory fails, each job claimed afterwards fails with the
reason, so the user sees it where they look rather than in a log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from latentloom.jobs.dispatch import EventPublisher, PreviewPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.records import JobRecord
from latentloom.jobs.reporter import JobReporter
from latentloom.jobs.run_job import run_job

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken
    from latentloom.engine.executor import Engine

logger = logging.getLogger(__name__)


class LocalWorker:
    def __init__(
        self,
        ledger: Ledger,
        engine: Engine | Callable[[], Engine],
        publish: EventPublisher,
        publish_preview: PreviewPublisher,
        *,
        poll_seconds: float = 2.0,
    ) -> None:
        self.ledger = ledger
        self._engine_source = engine
        self._publish, self._publish_preview = publish, publish_preview
        self._poll_seconds = poll_seconds
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        # Guards `_current`: claiming a job and registering its token happen under it, so a
        # cancel() that arrives right after the claim still finds the token.
        self._lock = threading.Lock()
        self._current: tuple[str, CancelToken] | None = None
        self._thread: threading.Thread | None = None
        self._engine_ready = threading.Event()

    # --- Dispatcher ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this LocalWorker was already started; make a new one")
        self._thread = threading.Thread(target=self._loop, name="latentloom-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._lock:
            self._stopping.set()
            if self._current is not None:
                self._current[1].cancel()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wakeup.set()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            if self._current is None or self._current[0] != job_id:
                return False
            self._current[1].cancel()
            return True

    def running(self) -> set[str]:
        with self._lock:
            return {self._current[0]} if self._current is not None else set()

    def status(self) -> dict[str, Any]:
        """For /api/system: jobs run on a thread of the server process itself."""
        with self._lock:
            running = self._current[0] if self._current is not None else None
        alive = self._thread is not None and self._thread.is_alive()
        return {
            "kind": "thread",
            "pid": os.getpid(),
            "ready": alive and self._engine_ready.is_set(),
            "restarts": 0,
            "running": running,
        }

    # --- the worker thread ---------------------------------------------------------------

    def _loop(self) -> None:
        engine, engine_error = self._build_engine()
        if engine is not None:
            self._engine_ready.set()
        while True:
            # Cleared before looking, so a wake() that lands after an empty claim is not lost.
            self._wakeup.clear()
            claimed = self._claim()
            if claimed is None:
                if self._stopping.is_set():
                    return
                self._wakeup.wait(self._poll_seconds)
                continue
            record, token = claimed
            try:
                self._run(engine, engine_error, record, token)
            except Exception:  # the ledger itself failed; keep serving the queue
                logger.exception("job %s could not be recorded", record.id)
            finally:
                with self._lock:
                    self._current = None

    def _build_engine(self) -> tuple[Engine | None, str | None]:
        from latentloom.engine.executor import Engine

        source = self._engine_source
        if isinstance(source, Engine):
            return source, None
        try:
            return source(), None
        except Exception as error:
            logger.exception("the engine could not start")
            return None, f"the engine could not start: {type(error).__name__}: {error}"

    def _claim(self) -> tuple[JobRecord, CancelToken] | None:
        from latentloom.engine.context import CancelToken

        with self._lock:
            if self._stopping.is_set():
                return None
            record = self.ledger.claim_next()
            if record is None:
                return None
            token = CancelToken()
            self._current = (record.id, token)
            return record, token

    def _run(
        self, engine: Engine | None, engine_error: str | None, record: JobRecord, token: CancelToken
    ) -> None:
        reporter = JobReporter(
            self.ledger, record.id, self._publish, self._publish_preview, cancel=token
        )
        reporter.started()
        if engine is None:
            reporter.failed(f"internal error: {engine_error}")
            return
        outcome = run_job(
            engine,
            record.id,
            record.workflow,
            on_event=reporter.on_event,
            on_preview=reporter.on_preview,
            cancel=token,
        )
        reporter.finish(outcome, stopping=self._stopping.is_set())
