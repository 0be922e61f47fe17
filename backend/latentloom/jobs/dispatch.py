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

How a Ray pool plugs in (`RayDispatcher`, not written yet), with no change to the API layer:

* `start()` connects to the cluster and creates one actor per GPU; each actor owns an
  `Engine`, so models stay resident on its GPU between jobs. The SQLite ledger stays in the
  server process: actors never touch it.
* A dispatch thread, woken by `wake()` like the local worker, claims the head of the queue
  whenever an actor is idle and routes it by model affinity: prefer the idle actor whose
  resident checkpoints/LoRAs overlap most with the model files the workflow names, then the
  one with the most free memory. (Should affinity ever need to reorder the queue, the ledger
  grows a `claim(job_id)`; the API is unaffected.)
* The actor runs the job and streams back the same pydantic events (as JSON, since the
  schema round-trips) and preview latents; the dispatcher feeds them to a `JobReporter`,
  which stamps the job id, records node states and publishes. Outcomes come back as
  succeeded(reports) / failed(error, node) / cancelled and go through the same reporter.
* `cancel(job_id)` calls the owning actor's `cancel` (which sets that run's `CancelToken`);
  `running()` is the union over actors. An actor that dies mid-job is treated like a server
  that died: `release` (or `fail` after `max_attempts`) and the job is routed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
