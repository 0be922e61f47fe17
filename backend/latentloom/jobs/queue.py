"""What the API layer does to jobs, each change paired with the event it owes subscribers.

The ledger holds the state and a `Dispatcher` runs the jobs; this keeps the few rules that
tie them together in one place instead of in each route: queued jobs are announced and the
dispatcher woken; a user's cancel is written to the ledger first, and only if that wins is
the running job interrupted and `JobCancelled` published (the worker's own, later cancel
then loses and stays silent, so the end of a job is announced exactly once).
"""

from __future__ import annotations

from typing import Any

from latentloom.engine.events import JobCancelled, JobQueued
from latentloom.jobs.dispatch import Dispatcher, EventPublisher
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.records import JobRecord


class JobQueue:
    def __init__(self, ledger: Ledger, dispatcher: Dispatcher, publish: EventPublisher) -> None:
        self.ledger, self.dispatcher, self._publish = ledger, dispatcher, publish

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
    ) -> list[JobRecord]:
        """Queue `runs` runs; validate the workflow before calling this (the ledger stores
        whatever it is given, and a bad document only fails when its turn comes).
        `job_id` and `sequence` are the ledger's (one run only)."""
        records = self.ledger.add_many(
            workflow,
            runs,
            priority=priority,
            front=front,
            client_id=client_id,
            job_id=job_id,
            sequence=sequence,
        )
        self._announce(records)
        return records

    def retry(self, job_id: str) -> JobRecord:
        record = self.ledger.retry(job_id)
        self._announce([record])
        return record

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued or running job; None when it had already ended (or is unknown)."""
        record = self.ledger.cancel(job_id)
        if record is None:
            return None
        # Interrupt before announcing, so the run's last steps do not follow its end.
        self.dispatcher.cancel(job_id)
        self._publish(JobCancelled(job=job_id))
        return record

    def _announce(self, records: list[JobRecord]) -> None:
        for record in records:
            self._publish(JobQueued(job=record.id, client_id=record.client_id))
        self.dispatcher.wake()
