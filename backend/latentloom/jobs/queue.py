"""What the API layer does to jobs, each change paired with the event it owes subscribers.

The ledger holds the state and a `Dispatcher` runs the jobs; this keeps the few rules that
tie them together in one place instead of in each route: queued jobs are announced and the
dispatcher woken; a user's cancel is written to the ledger first, and only if that wins is
the running job interrupted and `JobCancelled` published (the worker's own, later cancel
then loses and stays silent, so the end of a job is announced exactly once).

Every method here does SQLite work, so the server calls them off its event loop; with
`max_queue` (set here, or per call) the queue-full check happens inside the ledger's insert
transaction, so two submitters racing for the last place cannot both get it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latentloom.engine.events import JobCancelled, JobQueued
from latentloom.jobs.dispatch import Dispatcher, EventPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.records import JobRecord, JobSummary


class JobQueue:
    def __init__(
        self,
        ledger: Ledger,
        dispatcher: Dispatcher,
        publish: EventPublisher,
        *,
        max_queue: int | None = None,
        on_queued: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        """`on_queued` sees each submitted workflow once (the server reads its model files
        ahead while the worker starts: engine/read_ahead.py); it must not block."""
        self.ledger, self.dispatcher, self._publish = ledger, dispatcher, publish
        self.max_queue = max_queue  # the default limit of submit and retry; None: unbounded
        self._on_queued = on_queued

    def submit(
        self,
        workflow: dict[str, Any],
        *,
        runs: int = 1,
        priority: int = 0,
        front: bool = False,
        client_id: str | None = None,
        job_id: str | None = None,
        sequence: int | None = None,
        max_queue: int | None = None,
        document_text: str | None = None,
    ) -> list[JobRecord]:
        """Queue `runs` runs; validate the workflow before calling this (the ledger stores
        whatever it is given, and a bad document only fails when its turn comes).
        `job_id` and `sequence` are the ledger's (one run only). QueueFull when the queue
        would pass `max_queue` (default: the queue's own limit). `document_text`, when the
        caller has it, is `json.dumps(workflow)` (dumped off the event loop already)."""
        records = self.ledger.add_many(
            workflow,
            runs,
            priority=priority,
            front=front,
            client_id=client_id,
            job_id=job_id,
            sequence=sequence,
            max_queued=max_queue if max_queue is not None else self.max_queue,
            document_text=document_text,
        )
        self._announce(records)
        if self._on_queued is not None:
            self._on_queued(workflow)
        return records

    def retry(self, job_id: str, *, max_queue: int | None = None) -> JobSummary:
        """A new job with an ended job's workflow; QueueFull as for `submit`."""
        limit = max_queue if max_queue is not None else self.max_queue
        record = self.ledger.retry(job_id, max_queued=limit)
        self._announce([record])
        return record

    def cancel(self, job_id: str) -> JobSummary | None:
        """Cancel a queued or running job; None when it had already ended (or is unknown)."""
        record = self.ledger.cancel(job_id)
        if record is None:
            return None
        # Interrupt before announcing, so the run's last steps do not follow its end.
        self.dispatcher.cancel(job_id)
        self._publish(JobCancelled(job=job_id))
        return record

    def _announce(self, records: list[JobRecord] | list[JobSummary]) -> None:
        for record in records:
            self._publish(JobQueued(job=record.id, client_id=record.client_id))
        self.dispatcher.wake()
