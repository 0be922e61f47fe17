"""What the ledger knows about one job, as immutable records.

`JobSummary` is what lists need (no workflow document: the ledger keeps those once each, by
hash, and reading one means parsing it); `JobRecord` adds the document, for running the job
or showing it whole.
"""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Once a job reaches one of these it never changes again.
TERMINAL: Final = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
# Where a job can still be stopped: by cancelling it, or by failing it without running it.
LIVE: Final = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})

NodeState = Literal["started", "cached", "finished", "failed"]


class JobSummary(BaseModel):
    """One job as the ledger last wrote it, without its document; a snapshot."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: JobStatus
    title: str | None  # the workflow's meta.title, stored when the job was queued
    workflow_hash: str  # SHA-256 of the stored document text
    priority: int  # higher runs first
    sequence: int  # lower runs first among equal priority
    attempts: int  # how many times a worker has claimed it
    max_attempts: int
    client_id: str | None
    created_at: float  # unix time
    started_at: float | None
    finished_at: float | None
    error: str | None
    error_node: str | None
    outputs: dict[str, Any]  # node -> report (saved files...), once succeeded
    node_states: dict[str, NodeState]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobSummary:
        columns = set(row.keys())  # iterating a Row yields its values, not its column names
        fields = {key: row[key] for key in _SUMMARY_FIELDS if key in columns}
        for name in ("outputs", "node_states"):
            fields[name] = json.loads(fields[name])
        return cls.model_validate(fields)


# Read once: `model_fields` on the class goes through a slow descriptor, and a page of the
# job list reads 500 rows.
_SUMMARY_FIELDS: Final = tuple(JobSummary.model_fields)


class JobRecord(JobSummary):
    """A job with its workflow document (parsed from the ledger's one copy of it)."""

    workflow: dict[str, Any]  # the document as submitted

    @classmethod
    def with_document(cls, summary: JobSummary, workflow: dict[str, Any]) -> JobRecord:
        return cls.model_validate({**summary.__dict__, "workflow": workflow})
