"""The one interface through which jobs get run, whatever runs them.

The API layer knows two things: the `Ledger` (queue, reorder, cancel, inspect) and a
`Dispatcher` (wake it when something was queued; tell it to interrupt a job it is running).
Dispatchers pull work from the ledger themselves, so queue order and priority live in one
place, and they speak only through the `publish` / `publish_preview` callbacks given at
construction, with every event stamped with its job id.

Rules every dispatcher keeps:

* Claim with `Ledger.claim_next()` only when it can start the job now; the ledger's order is
  the order jobs start in.
* Terminal states are final: write `succeed` / `fail` / `cancel` to the ledger first and
  publish `JobFinished` / `JobFailed` / `JobCancelled` only if that write changed something.
  So exactly one party publishes each job's end: the API when a user cancels, the dispatcher
  otherwise. `JobReporter` implements this and should be reused.
* On `stop()`, interrupt running jobs and hand them back with `Ledger.release` so they run
  again after a restart (not counted as an attempt).

Dispatchers today: `WorkerProcess` (the server's default: the engine in one child process
the server outlives) and `LocalWorker` (a thread in this process; `worker = "thread"`).

**The worker protocol** (`worker_protocol.py`) is what a worker and its dispatcher say to
each other, whatever carries it: `RunJob(job_id, workflow)`, `CancelJob(job_id)` and
`Shutdown()` go to the worker; `Ready`, `StartupFailed`, `EventOut` (an `engine.events`
model as JSON), `PreviewOut` (a preview latent as float16 bytes, throttled in the worker)
and `Outcome` (succeeded with reports / failed with error and node / cancelled) come back.
Every message is plain data, never a tensor or a ledger handle. The worker side is
`worker_main._Worker`: it owns an `Engine` (models resident between jobs), runs one job at a
time through `run_job.run_job` (the body `LocalWorker` runs too), and sets a job's
`CancelToken` the moment its cancel arrives, so the sampler stops at its next step. The
dispatcher side feeds what comes back to a `JobReporter` (`finish(outcome)`), which writes
the ledger and publishes with the job id stamped, so clients see one event sequence from
every dispatcher.

How the Ray pool plugs in (`ray_dispatch.RayDispatcher`, written as described here, with
`ray_actor.py`, `ray_slots.py`, `ray_outputs.py`, `ray_cluster.py` and `affinity.py`), with no
change to the API layer:

* `start()` connects to the cluster and creates one actor per GPU; each actor wraps the
  same worker loop (`worker_main`), building its `Engine` from a `WorkerConfig`, so models
  stay resident on its GPU between jobs. The SQLite ledger stays in the server process:
  actors never touch it.
* A dispatch thread, woken by `wake()` like the others, claims the head of the queue
  whenever an actor is idle and routes it by model affinity (`affinity.choose_worker`: the
  idle actor holding all the workflow's model files, then the one holding most, then a short
  wait for a busy one holding them all, then the least recently used idle one). (Should affinity ever need to reorder the queue, the ledger
  grows a `claim(job_id)`; the API is unaffected.)
* The actor's `run(RunJob)` is a streaming generator yielding the protocol's `EventOut`,
  `PreviewOut`, then `JobFiles` (outputs as bytes) and `WorkerState`, and finally `Outcome`; the dispatcher handles them exactly as
  `WorkerProcess._run` does. `cancel(job_id)` sends `CancelJob` to the owning actor;
  `running()` is the union over actors.
* An actor that dies mid-job (`ActorDiedError`) is handled as `WorkerProcess` handles a
  dead child: `JobReporter.worker_died` re-queues the job with the attempt counted, or fails
  it with the cause after `max_attempts`, and a fresh actor replaces the dead one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from latentloom.engine.events import Preview

# An event from `latentloom.engine.events`, already stamped with its job id.
EventPublisher = Callable[[BaseModel], None]
PreviewPublisher = Callable[["Preview"], None]


@runtime_checkable
class Dispatcher(Protocol):
    def start(self) -> None:
        """Begin taking jobs from the ledger (returns at once)."""

    def stop(self, timeout: float | None = None) -> None:
        """Interrupt running jobs, hand them back to the queue, and wait for the workers."""

    def wake(self) -> None:
        """A job was queued (or reordered): look at the ledger again now."""

    def cancel(self, job_id: str) -> bool:
        """Interrupt `job_id` if it runs here; False when it does not (the ledger is untouched)."""

    def running(self) -> set[str]:
        """Ids of the jobs running here right now."""


@runtime_checkable
class ReportsStatus(Protocol):
    def status(self) -> dict[str, Any]:
        """What /api/system shows of the workers: kind, pid, ready, restarts, running job."""
