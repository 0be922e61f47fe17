"""What the routes share: settings, ledger, hub, workflow store, and the engine once it is warm.

Start-up is split so the socket answers within a second or two: the ledger (SQLite) and the
hub come up with the app; torch, the node registry, the engine and the worker load on a
background thread. Routes that need the engine wait for it; the rest never do.

Jobs run in one worker child process by default (`settings.worker = "process"`,
`jobs/worker_process.py`), which warms up its own engine alongside this one; this process's
engine validates, lists models and describes nodes but never runs a job. With
`worker = "thread"` jobs run on a thread here instead (`LocalWorker`).

Either way the process that runs jobs warms the engine stack before its first job
(`warmup.py`: diffusers and transformers imported, tokenizers built, first kernels run) while
the server is idle: the worker child before it says `Ready`, the thread worker before it
claims a job. A job queued meanwhile waits in the ledger; routes never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentloom.engine.read_ahead import ReadAhead
from latentloom.jobs.dispatch import ReportsStatus
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.worker_protocol import WorkerConfig
from latentloom.jobs.worker_spawn import SpawnedWorker
from latentloom.server.demo_models import DEMO_CHECKPOINT, ensure_demo_models
from latentloom.server.early_worker import worker_config
from latentloom.server.fresh_enough import FreshEnough
from latentloom.server.hub import EventHub
from latentloom.server.job_pages import PageBuilder
from latentloom.server.settings import ServerSettings
from latentloom.server.workflow_store import WorkflowStore
from latentloom.server.workflow_sync import WorkflowSync
from latentloom.warmup import Warmup, WarmupStep, engine_stack_steps

if TYPE_CHECKING:
    from latentloom.engine.executor import Engine
    from latentloom.jobs.dispatch import Dispatcher
    from latentloom.jobs.queue import JobQueue
    from latentloom.jobs.worker_process import WorkerProcess

log = logging.getLogger("latentloom.server")
QUEUE_COUNTS_MAX_AGE_S = 0.25


class EngineUnavailable(RuntimeError):
    """The engine failed to start; the message says why."""


@dataclass
class Services:
    settings: ServerSettings
    ledger: Ledger
    hub: EventHub
    workflows: WorkflowStore
    workflow_sync: WorkflowSync
    engine: Engine | None = None
    dispatcher: Dispatcher | None = None
    queue: JobQueue | None = None
    demo_checkpoint: str | None = None
    startup_error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    # Queued and running counts for /api/system, never awaited behind a busy ledger.
    queue_counts: FreshEnough[dict[str, int]] = field(init=False)
    # Job-list pages, built in a child process so paging never holds this process's GIL.
    job_pages: PageBuilder = field(default_factory=PageBuilder)
    # The thread worker's warm-up steps (None: the engine stack's); the child process
    # warms itself (jobs/worker_main.py).
    warm_up_steps: list[tuple[str, WarmupStep]] | None = None
    warmup: Warmup | None = None
    # A worker child `latentloom serve` spawned before the web stack loaded (early_worker.py).
    early_worker: SpawnedWorker | None = None
    read_ahead: ReadAhead = field(default_factory=ReadAhead)

    def __post_init__(self) -> None:
        ledger = self.ledger
        self.queue_counts = FreshEnough(
            lambda: {status: ledger.count(status) for status in ("queued", "running")},
            max_age_s=QUEUE_COUNTS_MAX_AGE_S,
        )

    @classmethod
    def open(cls, settings: ServerSettings, loop: asyncio.AbstractEventLoop) -> Services:
        for folder in (
            settings.data,
            settings.output_dir,
            settings.input_dir,
            settings.workflows_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(
            settings.ledger_path,
            max_attempts=settings.max_attempts,
            history_limit=settings.history_limit,
        )
        for record in ledger.recover_interrupted():
            log.warning(
                "job %s was running when the server stopped: now %s", record.id, record.status
            )
        hub = EventHub(loop, previews_per_second=settings.previews_per_second)
        workflows = WorkflowStore(settings.workflows_dir)
        return cls(settings, ledger, hub, workflows, WorkflowSync(workflows, hub))

    def warm_up_in_background(self) -> None:
        threading.Thread(target=self._warm_up, name="latentloom-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        self.job_pages.start()  # here, not on the event loop at the first page
        try:
            from latentloom.engine.setup import make_engine
            from latentloom.jobs.queue import JobQueue
            from latentloom.safe_write import sweep_temp_files

            sweep_temp_files(self.settings.data, self.settings.output_dir)  # left by a crash
            model_dirs = self._model_dirs()
            settings = self.settings
            if settings.ray is not None:  # Ray worker actors run the jobs (jobs/ray_dispatch.py)
                self.dispatcher = self._ray_dispatcher(model_dirs)
                self.dispatcher.start()
            elif settings.worker == "process":
                # Started first: the child warms up while this process builds its own engine
                # (for validation and the catalog; it never runs a job).
                self.dispatcher = self._worker_process(model_dirs)
                self.dispatcher.start()
            self.engine = make_engine(
                model_dirs=model_dirs,
                output_dir=settings.output_dir,
                input_dir=settings.input_dir,
                device=settings.device,
                node_packs=settings.node_packs,
                fast_path=settings.fast_path(),
                **settings.cost_budget(),
            )
            if self.dispatcher is None:
                from latentloom.jobs.local_worker import LocalWorker

                engine = self.engine
                steps = self.warm_up_steps
                if steps is None:
                    steps = engine_stack_steps(engine.settings.device, engine.settings.dtype)
                warmup = self.warmup = Warmup(steps).start()

                def warm_engine() -> Engine:
                    warmup.wait()  # on the worker's thread: queued jobs wait, routes do not
                    return engine

                self.dispatcher = LocalWorker(
                    self.ledger, warm_engine, self.hub.publish, self.hub.publish_preview
                )
                self.dispatcher.start()
            self.queue = JobQueue(
                self.ledger, self.dispatcher, self.hub.publish, on_queued=self._read_ahead
            )
            log.info("the engine is ready (%s)", self.engine.settings.device)
        except Exception as error:  # reported by /api/system and every route that needs the engine
            self.startup_error = f"{type(error).__name__}: {error}"
            log.exception("the engine failed to start")
        finally:
            self.ready.set()

    def _read_ahead(self, workflow: dict[str, Any]) -> None:
        """While the worker starts, a queued job's model files go into the page cache (a
        cold disk then overlaps the worker's imports); a warm worker reads them itself."""
        status = self.worker_status()
        if self.engine is None or (status is not None and status.get("ready")):
            return
        if self.warmup is not None and self.warmup.done():
            return
        engine = self.engine

        def files() -> list[Path]:
            from latentloom.engine.read_ahead import model_files
            from latentloom.graph.workflow import parse_workflow

            return model_files(parse_workflow(workflow), engine.registry, engine.settings.folders)

        self.read_ahead.start(files)

    def _worker_process(self, model_dirs: list[Path]) -> WorkerProcess:
        from latentloom.jobs.worker_process import WorkerProcess

        config = worker_config(self.settings, model_dirs)
        first = self._adopt_early_worker(config)
        return WorkerProcess(
            self.ledger, config, self.hub.publish, self.hub.publish_preview, first_worker=first
        )

    def _adopt_early_worker(self, config: WorkerConfig) -> SpawnedWorker | None:
        """The early child when it was started as this server would start it now; else ended
        (the model folders changed in between: it would serve the old ones)."""
        early, self.early_worker = self.early_worker, None
        if early is None or early.config == config:
            return early
        log.warning("the worker spawned at start-up saw other model folders; starting another")
        early.end()
        return None

    def _ray_dispatcher(self, model_dirs: list[Path]) -> Dispatcher:
        from latentloom.jobs.ray_cluster import RayOptions
        from latentloom.jobs.ray_dispatch import RayDispatcher

        settings = self.settings
        config = worker_config(settings, model_dirs)
        options = RayOptions(settings.ray or "auto", settings.ray_workers, settings.ray_dashboard)
        return RayDispatcher(
            self.ledger, config, self.hub.publish, self.hub.publish_preview, options
        )

    def worker_status(self) -> dict[str, Any] | None:
        """The dispatcher's own report (pid, ready, restarts...), for /api/system."""
        dispatcher = self.dispatcher
        if isinstance(dispatcher, ReportsStatus):
            status = dispatcher.status()
            if self.warmup is not None:
                status["warm_up"] = "done" if self.warmup.done() else "running"
            return status
        return None

    def _model_dirs(self) -> list[Path]:
        """The configured folders, plus a tiny demo checkpoint when they hold no checkpoint at all."""
        from latentloom.models.folders import ModelFolders

        dirs = list(self.settings.models)
        if ModelFolders.of(dirs).list("checkpoints") or not self.settings.demo_checkpoint:
            if not dirs:
                log.warning("no model folders given (--models): no checkpoints available")
            return dirs
        demo = ensure_demo_models(self.settings.demo_models_dir)
        log.warning(
            "no checkpoints found in %s; offering the tiny demo checkpoint %s (random weights: "
            "it makes noise, not pictures) — pass --models to use your own",
            dirs or "(none)",
            demo,
        )
        self.demo_checkpoint = DEMO_CHECKPOINT
        return [*dirs, self.settings.demo_models_dir]

    async def wait_for_engine(self) -> Engine:
        if not self.ready.is_set():
            await asyncio.to_thread(self.ready.wait)
        if self.engine is None:
            raise EngineUnavailable(self.startup_error or "the engine is not running")
        return self.engine

    async def wait_for_queue(self) -> JobQueue:
        await self.wait_for_engine()
        assert self.queue is not None
        return self.queue

    def close(self) -> None:
        self.job_pages.close()
        if self.early_worker is not None:  # never adopted: the engine failed to start first
            self.early_worker.end()
            self.early_worker = None
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout=10)
