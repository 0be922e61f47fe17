"""Jobs on a Ray cluster: one worker actor per GPU, routed by model affinity, nothing lost.

`RayDispatcher` is a `Dispatcher` like `WorkerProcess`, and speaks the same worker protocol,
so the API, the websocket and the ledger do not change. Its dispatch thread connects to Ray
(`ray_cluster.py`), keeps one `WorkerActor` (`ray_actor.py`) per GPU in the cluster (or the
configured number, one CPU each on clusters without GPUs), and whenever an actor is idle it
claims the head of the ledger's queue and asks `affinity.choose_worker` which actor takes
it. Each running job has a thread here that reads the actor's streaming generator and feeds a
`JobReporter`, exactly as `WorkerProcess._run` reads its pipe, so clients see the same event
sequence. Only this process touches the ledger.

Faults: an actor that dies mid-job (killed, its node lost, out of memory) ends its stream with
`RayActorError`; the job is re-queued with its attempt counted, or failed with the cause once
its attempts are used, and a fresh actor replaces the dead one. The pool is checked every
`poll_seconds`: a replacement, or new actors for GPUs that joined, take work as soon as they
are warm. Outputs come back as bytes and are written by `RemoteOutputs` only for the attempt
the ledger still has running. `stop()` cancels running jobs (back to the queue, uncounted),
ends the actors, and disconnects from Ray when it connected.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from latentloom.engine.events import Event, NodeFailed, NodeFinished, NodeStarted
from latentloom.jobs import ray_cluster
from latentloom.jobs.affinity import Route, choose_worker, models_named
from latentloom.jobs.dispatch import EventPublisher, PreviewPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.ray_actor import JobFiles, WorkerActor, WorkerState
from latentloom.jobs.ray_outputs import RemoteOutputs
from latentloom.jobs.ray_slots import Slot, SlotStatus
from latentloom.jobs.records import JobRecord, JobStatus
from latentloom.jobs.reporter import JobReporter
from latentloom.jobs.worker_process import _preview
from latentloom.jobs.worker_protocol import (
    EventOut,
    Outcome,
    PreviewOut,
    Ready,
    RunJob,
    WorkerConfig,
)

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken

logger = logging.getLogger(__name__)
_EVENTS: TypeAdapter[Any] = TypeAdapter(Event)
MAX_START_FAILURES = 3  # an actor failing to start this many times in a row is given up
ACTOR_THREADS = 4  # run() streams while cancel() and ready() answer


class RayDispatcher:
    def __init__(
        self,
        ledger: Ledger,
        config: WorkerConfig,
        publish: EventPublisher,
        publish_preview: PreviewPublisher,
        options: ray_cluster.RayOptions,
        *,
        poll_seconds: float = 2.0,
        start_timeout: float = 600.0,
    ) -> None:
        self.ledger, self.config, self.options = ledger, config, options
        self._publish, self._publish_preview = publish, publish_preview
        self._poll_seconds, self._start_timeout = poll_seconds, start_timeout
        self._outputs = RemoteOutputs(config.output_dir)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a slot changed state
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._slots: list[Slot] = []
        self._runners: set[threading.Thread] = set()
        self._thread: threading.Thread | None = None
        self._owns_connection = False
        self._error: str | None = None  # Ray or every actor cannot start: jobs fail with it
        self._handed_back: set[str] = set()

    # --- Dispatcher ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this RayDispatcher was already started; make a new one")
        self._thread = threading.Thread(target=self._loop, name="latentloom-ray", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._changed:
            self._stopping.set()
            running = [slot for slot in self._slots if slot.job is not None]
            self._changed.notify_all()
        for slot in running:
            self._cancel_on(slot)
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wakeup.set()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            slot = next((s for s in self._slots if s.job and s.job[0] == job_id), None)
        if slot is None:
            return False
        self._cancel_on(slot)
        return True

    def running(self) -> set[str]:
        with self._lock:
            return {slot.job[0] for slot in self._slots if slot.job is not None}

    def status(self) -> dict[str, Any]:
        """For /api/system: the pool, and per worker its device, resident models and job."""
        with self._lock:
            workers = [slot.status() for slot in self._slots]
        states = {worker.state for worker in workers}
        state = "failed" if self._error else "running" if "busy" in states else "idle"
        if not states & {"idle", "busy"} and not self._error:
            state = "stopped" if self._stopping.is_set() else "starting"
        return RayPoolStatus(
            state=state,
            ready=bool(states & {"idle", "busy"}),
            address=self.options.address,
            error=self._error,
            running=sorted(w.job for w in workers if w.job),
            restarts=sum(w.restarts for w in workers),
            workers=workers,
        ).model_dump()

    def load_counts(self) -> dict[str, dict[str, int]]:
        """Per worker, how often each model file was read from disk (what the workers report)."""
        with self._lock:
            return {slot.name: dict(slot.loads) for slot in self._slots}

    # --- the dispatch thread -------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self._owns_connection = ray_cluster.connect(self.options)
        except Exception as error:
            self._error = f"Ray could not start: {type(error).__name__}: {error}"
            logger.exception("Ray could not start")
        last_check = float("-inf")
        try:
            while not self._stopping.is_set():
                if self._error is None and time.monotonic() - last_check >= self._poll_seconds:
                    self._keep_pool()
                    last_check = time.monotonic()
                self._wakeup.clear()
                if not self._dispatch_one():
                    self._wakeup.wait(self._poll_seconds)
        finally:
            self._end()

    def _keep_pool(self) -> None:
        """Replace dead actors; add one per GPU that joined the cluster."""
        wanted = self.options.workers or max(ray_cluster.cluster_gpus(), 1)
        with self._lock:
            while len(self._slots) < wanted:
                self._slots.append(Slot(f"ray-{len(self._slots)}"))
            to_start = [slot for slot in self._slots if slot.state == "dead"]
        for slot in to_start:
            self._start_actor(slot)

    def _start_actor(self, slot: Slot) -> None:
        import ray

        resources: dict[str, Any] = (
            {"num_gpus": 1, "num_cpus": 0} if ray_cluster.cluster_gpus() else {"num_cpus": 1}
        )
        actor = ray.remote(WorkerActor).options(max_concurrency=ACTOR_THREADS, **resources)
        with self._lock:
            slot.began(actor.remote(self.config))
            handle, incarnation = slot.handle, slot.incarnation
        threading.Thread(
            target=self._await_ready, args=(slot, handle, incarnation), daemon=True
        ).start()

    def _await_ready(self, slot: Slot, handle: Any, incarnation: int) -> None:
        import ray

        try:
            ready: Ready = ray.get(handle.ready.remote(), timeout=self._start_timeout)
        except Exception as error:
            cause = _cause(error)
            with self._changed:
                if slot.incarnation != incarnation or self._stopping.is_set():
                    return
                gave_up = slot.start_failed(cause, MAX_START_FAILURES)
                if gave_up and all(s.state == "failed" for s in self._slots):
                    self._error = f"no Ray worker could start: {cause}"
                self._changed.notify_all()
            logger.error("Ray worker %s could not start: %s", slot.name, cause)
            _kill(handle)
            return
        try:
            state: WorkerState = ray.get(handle.state.remote(), timeout=self._start_timeout)
        except Exception:
            state = None  # type: ignore[assignment]  # it died just now: the next job finds out
        with self._changed:
            if slot.incarnation == incarnation:
                slot.warm(ready)
                if state is not None:
                    slot.reported(state)
                self._changed.notify_all()
        logger.info("Ray worker %s is ready on %s (%.1f s)", slot.name, ready.device, ready.seconds)
        self._wakeup.set()

    def _dispatch_one(self) -> bool:
        """Claim the queue's head when a worker is idle and start it where affinity says."""
        from latentloom.engine.context import CancelToken

        if self._error is not None:
            return self._fail_next()
        with self._lock:
            if not any(slot.state == "idle" for slot in self._slots):
                return False
            record = self.ledger.claim_next()
        if record is None:
            return False
        models = models_named(record.workflow) if self.options.affinity else frozenset()
        begun, token = time.monotonic(), CancelToken()
        with self._changed:
            while True:
                views = [slot.view() for slot in self._slots if slot.state in ("idle", "busy")]
                waited = time.monotonic() - begun
                choice = choose_worker(
                    models, views, waited_s=waited, max_wait_s=self.options.affinity_wait_s
                )
                if self._stopping.is_set():
                    self.ledger.release(record.id)
                    return False
                if isinstance(choice, Route):
                    slot = next(s for s in self._slots if s.name == choice.worker)
                    slot.take(record.id, token)
                    break
                # Waiting for a busy worker holding its models, or for any worker (a race).
                self._changed.wait(max(self.options.affinity_wait_s - waited, 0.05))
        runner = threading.Thread(
            target=self._run, args=(slot, slot.handle, slot.key, record, token), daemon=True
        )
        with self._lock:
            self._runners.add(runner)
        runner.start()
        return True

    def _fail_next(self) -> bool:
        record = self.ledger.claim_next()
        if record is None:
            return False
        reporter = JobReporter(self.ledger, record.id, self._publish, self._publish_preview)
        reporter.started()
        reporter.failed(f"internal error: {self._error}")
        return True

    # --- one job on one actor ------------------------------------------------------------

    def _run(
        self, slot: Slot, handle: Any, key: str, record: JobRecord, token: CancelToken
    ) -> None:
        from ray.exceptions import RayActorError

        reporter = JobReporter(
            self.ledger, record.id, self._publish, self._publish_preview, cancel=token
        )
        running: NodeStarted | None = None  # the node the actor is in, to name it if it dies
        began, files, cause = False, None, "its stream ended without an outcome"
        try:
            reporter.started()
            import ray

            for reference in handle.run.remote(RunJob(record.id, record.workflow), record.attempts):
                message = ray.get(reference)
                began = True
                if isinstance(message, EventOut):
                    event: BaseModel = _EVENTS.validate_json(message.event_json)
                    if isinstance(event, NodeStarted):
                        running = event
                    elif isinstance(event, NodeFinished | NodeFailed):
                        running = None
                    reporter.on_event(event)
                elif isinstance(message, PreviewOut):
                    reporter.on_preview(_preview(message))
                elif isinstance(message, JobFiles):
                    files = message
                elif isinstance(message, WorkerState):
                    with self._lock:
                        slot.reported(message)
                elif isinstance(message, Outcome):
                    self._finish(key, record, reporter, message, files)
                    self._release(slot, key)
                    return
        except RayActorError as error:
            cause = _cause(error)
        except Exception as error:  # the ledger, or a bug in the actor: the job fails, not us
            logger.exception("job %s failed on Ray worker %s", record.id, slot.name)
            reporter.failed(f"internal error: {type(error).__name__}: {error}")
            self._release(slot, key)
            return
        self._died(slot, handle, key, record, reporter, running, began, cause)

    def _finish(
        self,
        key: str,
        record: JobRecord,
        reporter: JobReporter,
        outcome: Outcome,
        files: JobFiles | None,
    ) -> None:
        if outcome.status != "succeeded":
            reporter.finish(outcome, stopping=self._stopping.is_set())
            return
        current = self.ledger.get(record.id)
        if (
            current is None
            or current.status is not JobStatus.RUNNING
            or current.attempts != record.attempts
        ):
            return  # fenced: this attempt no longer counts (cancelled, or re-queued)
        data = files.files if files is not None and files.attempt == record.attempts else {}
        reports, written = self._outputs.write(key, data, outcome.reports)
        if not reporter.succeeded(reports):
            self._outputs.discard(written)

    def _died(
        self,
        slot: Slot,
        handle: Any,
        key: str,
        record: JobRecord,
        reporter: JobReporter,
        running: NodeStarted | None,
        began: bool,
        cause: str,
    ) -> None:
        with self._changed:
            if slot.key == key:
                slot.died(cause)
            self._changed.notify_all()
        self._outputs.forget(key)
        _kill(handle)
        self._wakeup.set()  # the loop replaces it
        if self._stopping.is_set():
            reporter.interrupted()
            return
        if not began and record.id not in self._handed_back:
            self._handed_back.add(record.id)  # died before it began: not the job's doing
            reporter.handed_back(record.client_id)
            return
        error = f"worker died: Ray worker {slot.name} {cause}"
        if running is not None:
            name = slot.node_names.get(running.type, running.type)
            error += f' while running node "{running.node}" ({name})'
        error += f", on attempt {record.attempts} of {record.max_attempts}"
        node = running.node if running is not None else None
        changed = reporter.worker_died(error, node, running.type if running is not None else "")
        if changed is not None:
            logger.warning("job %s is now %s: %s", record.id, changed.status, error)

    def _release(self, slot: Slot, key: str) -> None:
        with self._changed:
            if slot.key == key:
                slot.free()
            self._changed.notify_all()
        self._wakeup.set()

    def _cancel_on(self, slot: Slot) -> None:
        with self._lock:
            job, handle = slot.job, slot.handle
        if job is None:
            return
        job[1].cancel()
        try:
            handle.cancel.remote(job[0])  # sets the actor's token: the sampler stops next step
        except Exception:
            logger.warning("could not reach Ray worker %s to cancel %s", slot.name, job[0])

    def _end(self) -> None:
        for runner in list(self._runners):
            runner.join(30.0)
        with self._lock:
            handles = [slot.handle for slot in self._slots if slot.handle is not None]
            for slot in self._slots:
                slot.stopped()
        for handle in handles:
            _kill(handle)
        if self._owns_connection:
            ray_cluster.disconnect()


class RayPoolStatus(BaseModel):
    """/api/system's `worker` section with Ray: the pool, then each worker."""

    kind: str = "ray"
    state: str  # starting | idle | running | failed | stopped
    ready: bool
    address: str
    error: str | None
    running: list[str]
    restarts: int
    workers: list[SlotStatus]


def _cause(error: BaseException) -> str:
    """A Ray error's first line, as a phrase: Ray's messages run to many lines."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return f"died ({type(error).__name__}: {first[:300]})"


def _kill(handle: Any) -> None:
    if handle is None:
        return
    import ray

    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already gone
        logger.debug("Ray worker already gone", exc_info=True)
