"""Everything one job's run reports, stamped with its id, with the ledger written first.

Node events are recorded in the ledger (their state only: progress is far too frequent to
write) and then published. A run's outcome is written to the ledger and its terminal event
published only when that write won: a job cancelled from the API while it was still running
stays cancelled, and its late "finished" is never announced.

A subscriber that raises must not fail the job or kill the worker, so publishing errors are
logged and swallowed; the ledger remains the truth clients can re-read.

Every worker loop ends a run with an `Outcome` (`finish`); a worker process that dies
mid-job ends it through `worker_died`, which re-queues it (the attempt counted) or fails it
once the job has used its attempts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from latentloom.engine.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobQueued,
    JobStarted,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeStarted,
)
from latentloom.jobs.dispatch import EventPublisher, PreviewPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.records import JobRecord, JobStatus, NodeState
from latentloom.jobs.worker_protocol import Outcome

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken
    from latentloom.engine.events import Preview

logger = logging.getLogger(__name__)

_NODE_STATES: dict[type[BaseModel], NodeState] = {
    NodeStarted: "started",
    NodeCached: "cached",
    NodeFinished: "finished",
    NodeFailed: "failed",
}


class JobReporter:
    def __init__(
        self,
        ledger: Ledger,
        job_id: str,
        publish: EventPublisher,
        publish_preview: PreviewPublisher,
        cancel: CancelToken | None = None,
    ) -> None:
        self.ledger, self.job_id, self._cancel = ledger, job_id, cancel
        self._publish, self._publish_preview = publish, publish_preview

    def _emit(self, event: BaseModel) -> None:
        try:
            self._publish(event)
        except Exception:
            logger.exception("publishing %s for job %s failed", type(event).__name__, self.job_id)

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled

    def started(self) -> None:
        self._emit(JobStarted(job=self.job_id))

    def on_event(self, event: BaseModel) -> None:
        """The engine's `on_event`: record node states, stamp the job id, publish.

        Silent once the run is cancelled: its end may already be announced, and the steps
        it takes before noticing would read as if it were still going."""
        if self._cancelled():
            return
        state = _NODE_STATES.get(type(event))
        node = getattr(event, "node", None)
        if state is not None and isinstance(node, str):
            self.ledger.mark_node(self.job_id, node, state)
        self._emit(event.model_copy(update={"job": self.job_id}))

    def on_preview(self, preview: Preview) -> None:
        if self._cancelled():
            return
        try:
            self._publish_preview(dataclasses.replace(preview, job=self.job_id))
        except Exception:
            logger.exception("publishing a preview for job %s failed", self.job_id)

    # --- outcomes: each returns whether it won the terminal write ----------------------

    def succeeded(self, outputs: Mapping[str, Mapping[str, Any]]) -> bool:
        reports = {node: dict(report) for node, report in outputs.items()}
        if not self.ledger.succeed(self.job_id, reports):
            return False
        self._emit(JobFinished(job=self.job_id, outputs=reports))
        return True

    def failed(self, error: str, node: str | None = None) -> bool:
        if not self.ledger.fail(self.job_id, error, node):
            return False
        self._emit(JobFailed(job=self.job_id, error=error, node=node))
        return True

    def cancelled(self) -> bool:
        if self.ledger.cancel(self.job_id) is None:
            return False
        self._emit(JobCancelled(job=self.job_id))
        return True

    def interrupted(self) -> bool:
        """The server is stopping: back to the queue, nothing announced (the job is not over)."""
        return self.ledger.release(self.job_id)

    def finish(self, outcome: Outcome, *, stopping: bool = False) -> bool:
        """Record a run's outcome; a run cancelled because the worker is `stopping` is handed
        back to the queue instead (stop() cancels it too)."""
        if outcome.status == "succeeded":
            return self.succeeded(outcome.reports)
        if outcome.status == "cancelled":
            return self.interrupted() if stopping else self.cancelled()
        return self.failed(
            outcome.error or "internal error: the worker gave no reason", outcome.node
        )

    def handed_back(self, client_id: str | None) -> bool:
        """Back to the queue uncounted, announced as queued again (the worker died before
        this job began, through no fault of the job)."""
        if not self.ledger.release(self.job_id):
            return False
        self._emit(JobQueued(job=self.job_id, client_id=client_id))
        return True

    def worker_died(
        self, error: str, node: str | None = None, node_type: str = ""
    ) -> JobRecord | None:
        """The worker died running this job: re-queue it (announced as queued again) or, with
        its attempts used up, fail it with `error`. None when it was no longer running (a
        user cancelled it first)."""
        if node is not None:
            self.on_event(NodeFailed(node=node, type=node_type, error=error))
        changed = self.ledger.requeue_or_fail(self.job_id, error, node)
        if changed is None:
            return None
        if changed.status is JobStatus.QUEUED:
            self._emit(JobQueued(job=self.job_id, client_id=changed.client_id))
        else:
            self._emit(JobFailed(job=self.job_id, error=error, node=node))
        return changed
