"""One place in the Ray pool: the actor in it now, its state, and what it last reported.

A slot outlives its actors: when one dies, a fresh actor takes the same slot (name `ray-0`,
...), and `incarnation` tells the old actor's late answers from the new one's. `key` names the
incarnation for output file names (`ray_outputs.py`). The dispatcher changes a slot only
under its lock; the states are starting -> idle <-> busy -> dead -> starting ..., or failed
after repeated start failures, or stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from latentloom.jobs.affinity import WorkerView

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken
    from latentloom.jobs.ray_actor import WorkerState
    from latentloom.jobs.worker_protocol import Ready

SlotState = Literal["starting", "idle", "busy", "dead", "failed", "stopped"]


class SlotStatus(BaseModel):
    """One worker as /api/system shows it."""

    name: str
    state: SlotState
    pid: int | None
    host: str | None
    device: str | None
    gpu_ids: list[str]
    resident: list[str]  # model files its engine holds
    loads: dict[str, int]  # model file -> times read from disk
    job: str | None
    jobs_run: int
    restarts: int
    last_exit: str | None
    warm_up_seconds: float | None
    cache_used_bytes: int


class Slot:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state: SlotState = "dead"  # nothing started yet: the pool starts it
        self.handle: Any = None
        self.incarnation = 0
        self.ready: Ready | None = None
        self.reports: WorkerState | None = None
        self.loads: dict[str, int] = {}  # over every incarnation: load counts are per slot
        self._base_loads: dict[str, int] = {}  # the loads of the incarnations before this one
        self.job: tuple[str, CancelToken] | None = None
        self.last_used = 0.0
        self.last_exit: str | None = None
        self.start_failures = 0
        self.node_names: dict[str, str] = {}

    @property
    def key(self) -> str:
        return f"{self.name}#{self.incarnation}"

    def view(self) -> WorkerView:
        resident = frozenset(self.reports.resident) if self.reports is not None else frozenset()
        return WorkerView(self.name, self.state == "idle", resident, self.last_used)

    def began(self, handle: Any) -> None:
        self.handle, self.state, self.ready, self.reports = handle, "starting", None, None
        self.incarnation += 1
        self._base_loads = dict(self.loads)

    def warm(self, ready: Ready) -> None:
        self.state, self.ready, self.start_failures = "idle", ready, 0
        self.node_names = ready.node_names

    def start_failed(self, cause: str, limit: int) -> bool:
        """Whether the slot is given up (too many failures in a row); else it starts again."""
        self.start_failures += 1
        self.last_exit = cause
        self.state = "failed" if self.start_failures >= limit else "dead"
        return self.state == "failed"

    def take(self, job_id: str, token: CancelToken) -> None:
        import time

        self.state, self.job, self.last_used = "busy", (job_id, token), time.monotonic()

    def reported(self, state: WorkerState) -> None:
        self.reports = state
        # An actor counts its own loads; a slot adds up those of its incarnations.
        base = self._base_loads
        self.loads = {k: base.get(k, 0) + state.loads.get(k, 0) for k in {*base, *state.loads}}

    def free(self) -> None:
        self.state, self.job = "idle", None

    def died(self, cause: str) -> None:
        self.state, self.job, self.last_exit, self.reports = "dead", None, cause, None

    def stopped(self) -> None:
        self.state, self.job = "stopped", None

    def status(self) -> SlotStatus:
        ready, reports = self.ready, self.reports
        return SlotStatus(
            name=self.name,
            state=self.state,
            pid=reports.pid if reports else ready.pid if ready else None,
            host=reports.host if reports else None,
            device=ready.device if ready else None,
            gpu_ids=list(reports.gpu_ids) if reports else [],
            resident=list(reports.resident) if reports else [],
            loads=dict(self.loads),
            job=self.job[0] if self.job else None,
            jobs_run=reports.jobs_run if reports else 0,
            restarts=max(self.incarnation - 1, 0),
            last_exit=self.last_exit,
            warm_up_seconds=round(ready.seconds, 3) if ready else None,
            cache_used_bytes=reports.cache_used_bytes if reports else 0,
        )
