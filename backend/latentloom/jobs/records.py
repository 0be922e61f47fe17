"""What the ledger knows about one job, as an immutable record."""

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


class JobRecord(BaseModel):
    """One job as the ledger last wrote it; a snapshot, never updated in place."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: JobStatus
    workflow: dict[str, Any]  # the document as submitted
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
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        fields = dict(row)
        for name in ("workflow", "outputs", "node_states"):
            fields[name] = json.loads(fields[name])
        return cls.model_validate(fields)
