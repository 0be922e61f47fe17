"""The job ledger: a SQLite file that is the source of truth for every job.

Every state change is one `BEGIN IMMEDIATE` transaction whose UPDATE names the states it may
leave (`WHERE status IN (...)`), so two writers racing on one job cannot both win: the first
terminal write sticks and every later one reports that it changed nothing. That also holds
across processes sharing the file, not only across threads sharing this object (which
serialise on one connection behind a lock). WAL mode lets readers proceed during writes.

Queue order is `priority DESC, sequence ASC`. `sequence` grows for each job added at the
back; a job added at the front takes a number below every job in the file, so the latest
"front" job runs first among its priority.

Each distinct workflow document is stored once (`workflows`, keyed by the SHA-256 of its
text; documents reach the ledger normalised, so equal workflows have equal text) and a job
keeps the hash and the title: `summaries` lists jobs without reading a document, and a
document goes when the last job using it is pruned. `add_many` and `retry` can check a queue
limit inside their insert transaction, so concurrent submitters cannot overfill the queue.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from latentloom.jobs.listing import read_page
from latentloom.jobs.records import LIVE, TERMINAL, JobRecord, JobStatus, JobSummary, NodeState
from latentloom.jobs.schema import document_hash, document_title, prepare

INTERRUPTED_ERROR: Final = (
    "interrupted: the server stopped while running this job {n} times; giving up"
)


def _sql_set(statuses: frozenset[JobStatus]) -> str:
    return "(" + ", ".join(f"'{status}'" for status in sorted(statuses)) + ")"


_TERMINAL_SQL: Final = _sql_set(TERMINAL)
_LIVE_SQL: Final = _sql_set(LIVE)

_DOCUMENT_COLUMNS: Final = "jobs.*, workflows.document AS document"
_DOCUMENT_JOIN: Final = "JOIN workflows ON workflows.hash = jobs.workflow_hash"
_WITH_DOCUMENT: Final = f"SELECT {_DOCUMENT_COLUMNS} FROM jobs {_DOCUMENT_JOIN}"
# Documents no job refers to any more (after pruning or forgetting jobs).
_FORGET_DOCUMENTS: Final = (
    "DELETE FROM workflows WHERE NOT EXISTS"
    " (SELECT 1 FROM jobs WHERE jobs.workflow_hash = workflows.hash)"
)
# Event ids are epoch * EVENT_EPOCH_SPAN + n: each server start takes the next epoch, so ids
# keep growing across restarts and stay exact in a JavaScript number (2**53) for 2**21 starts.
EVENT_EPOCH_SPAN: Final = 2**32

# The smallest sequence number at or above ? that no job holds.
_FREE_SEQUENCE: Final = """
    SELECT MIN(candidate) FROM (SELECT ? AS candidate UNION SELECT sequence + 1 FROM jobs
    WHERE sequence >= ?) WHERE candidate NOT IN (SELECT sequence FROM jobs)
"""


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} in the ledger (finished jobs are pruned over time)")


class JobExists(ValueError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"a job with id {job_id!r} already exists; choose another id")


class QueueFull(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the queue is full ({limit} jobs); try again when some have run")


class JobNotRetryable(Exception):
    def __init__(self, job_id: str, status: JobStatus) -> None:
        self.job_id, self.status = job_id, status
        super().__init__(
            f"job {job_id!r} is {status}; only succeeded, failed or cancelled jobs can be "
            "retried (cancel it first to start over)"
        )


class Ledger:
    def __init__(
        self,
        path: Path,
        *,
        max_attempts: int = 3,
        history_limit: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if history_limit < 0:
            raise ValueError(f"history_limit must be 0 or more, got {history_limit}")
        self.path = Path(path)
        self.max_attempts, self.history_limit, self._clock = max_attempts, history_limit, clock
        self._lock = threading.RLock()
        # Autocommit mode: transactions are explicit, so BEGIN IMMEDIATE means what it says.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL survives a crash of the process (not of the machine) without an
            # fsync per write; a job queue can afford that trade.
            self._db.execute("PRAGMA synchronous = NORMAL")
            prepare(self._db, self.path)
        except BaseException:
            self._db.close()
            raise
        # Counts (the status report asks often) read on a connection of their own: in WAL mode
        # they see the last commit without waiting for a long listing or a big insert.
        self._counter = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._counter_lock = threading.Lock()

    def close(self) -> None:
        with self._counter_lock:
            self._counter.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _select(self, db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute(f"{_WITH_DOCUMENT} WHERE jobs.id = ?", (job_id,)).fetchone()
        return _record(row) if row is not None else None

    def _summary(self, db: sqlite3.Connection, job_id: str) -> JobSummary | None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobSummary.from_row(row) if row is not None else None

    # --- adding -------------------------------------------------------------------------

    def add(
        self,
        workflow: dict[str, Any],
        *,
        priority: int = 0,
        front: bool = False,
        client_id: str | None = None,
        job_id: str | None = None,
        sequence: int | None = None,
        max_queued: int | None = None,
    ) -> JobRecord:
        return self.add_many(
            workflow,
            1,
            priority=priority,
            front=front,
            client_id=client_id,
            job_id=job_id,
            sequence=sequence,
            max_queued=max_queued,
        )[0]

    def add_many(
        self,
        workflow: dict[str, Any],
        runs: int,
        *,
        priority: int = 0,
        front: bool = False,
        client_id: str | None = None,
        job_id: str | None = None,
        sequence: int | None = None,
        max_queued: int | None = None,
        document_text: str | None = None,
    ) -> builtins.list[JobRecord]:
        """Queue `runs` runs of one workflow in one transaction, in submission order.

        For one run, a caller may choose the id (`job_id`: ComfyUI clients pick their own
        prompt ids) and the place in the queue (`sequence`: the first free number from it
        up, so the job runs after the jobs of its priority numbered at or below it).
        With `max_queued`, QueueFull (and nothing added) when the queue would pass it.
        `document_text` is `json.dumps(workflow)` when the caller has it already.
        """
        if runs < 1:
            raise ValueError(f"runs must be at least 1, got {runs}")
        if not isinstance(workflow, dict):
            raise TypeError(f"a workflow is a JSON object, got {type(workflow).__name__}")
        if runs > 1 and (job_id is not None or sequence is not None):
            raise ValueError("job_id and sequence choose one job's id and place; runs must be 1")
        document = json.dumps(workflow) if document_text is None else document_text
        digest = document_hash(document)
        ids = [job_id] if job_id is not None else [uuid.uuid4().hex for _ in range(runs)]
        with self._transaction() as db:
            if job_id is not None and self._summary(db, job_id) is not None:
                raise JobExists(job_id)
            self._check_room(db, runs, max_queued)
            low, high = db.execute("SELECT MIN(sequence), MAX(sequence) FROM jobs").fetchone()
            first = (low if low is not None else 1) - runs if front else (high or 0) + 1
            if sequence is not None:
                first = db.execute(_FREE_SEQUENCE, (sequence, sequence)).fetchone()[0]
            now, title = self._clock(), document_title(workflow)
            db.execute(
                "INSERT OR IGNORE INTO workflows (hash, document) VALUES (?, ?)", (digest, document)
            )
            db.executemany(
                "INSERT INTO jobs (id, status, workflow_hash, title, priority, sequence,"
                " max_attempts, client_id, created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                [
                    (job_id, digest, title, priority, first + i, self.max_attempts, client_id, now)
                    for i, job_id in enumerate(ids)
                ],
            )
            summaries = [summary for job_id in ids if (summary := self._summary(db, job_id))]
        # The caller's document, not a re-read of the stored text: it is the same JSON.
        return [JobRecord.with_document(summary, workflow) for summary in summaries]

    def _check_room(self, db: sqlite3.Connection, runs: int, max_queued: int | None) -> None:
        if max_queued is None:
            return
        queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
        if queued + runs > max_queued:
            raise QueueFull(max_queued)

    def retry(self, job_id: str, *, max_queued: int | None = None) -> JobSummary:
        """A new queued job with the workflow, priority and client of a finished one; the
        same stored document, so nothing is parsed. QueueFull as for `add_many`."""
        with self._transaction() as db:
            original = self._summary(db, job_id)
            if original is None:
                raise JobNotFound(job_id)
            if original.status not in TERMINAL:
                raise JobNotRetryable(job_id, original.status)
            self._check_room(db, 1, max_queued)
            new_id = uuid.uuid4().hex
            high = db.execute("SELECT MAX(sequence) FROM jobs").fetchone()[0]
            db.execute(
                "INSERT INTO jobs (id, status, workflow_hash, title, priority, sequence,"
                " max_attempts, client_id, created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_id,
                    original.workflow_hash,
                    original.title,
                    original.priority,
                    (high or 0) + 1,
                    self.max_attempts,
                    original.client_id,
                    self._clock(),
                ),
            )
            record = self._summary(db, new_id)
            assert record is not None
            return record

    # --- reading ------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._select(self._db, job_id)

    def list(
        self, statuses: Iterable[str] | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[builtins.list[JobRecord], int]:
        """A page of jobs with their documents, and how many match: queued in run order,
        running, then history newest first. `statuses` are `JobStatus` members or their
        names; None means all. Each distinct document on the page is parsed once."""
        rows, total = self._page(_DOCUMENT_COLUMNS, _DOCUMENT_JOIN, statuses, limit, offset)
        documents: dict[str, dict[str, Any]] = {}
        records = []
        for row in rows:
            digest = row["workflow_hash"]
            if digest not in documents:
                documents[digest] = json.loads(row["document"])
            records.append(JobRecord.with_document(JobSummary.from_row(row), documents[digest]))
        return records, total

    def summaries(
        self, statuses: Iterable[str] | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[builtins.list[JobSummary], int]:
        """`list` without the documents: what a job list shows, read without parsing one."""
        rows, total = self._page("*", "", statuses, limit, offset)
        return [JobSummary.from_row(row) for row in rows], total

    def _page(
        self,
        columns: str,
        join: str,
        statuses: Iterable[str] | None,
        limit: int,
        offset: int,
    ) -> tuple[builtins.list[sqlite3.Row], int]:
        chosen = set(JobStatus) if statuses is None else {JobStatus(s) for s in statuses}
        with self._lock:
            self._db.execute("BEGIN")  # one snapshot for the page and its total
            try:
                return read_page(self._db, columns, join, chosen, limit, offset)
            finally:
                self._db.execute("COMMIT")

    def get_summary(self, job_id: str) -> JobSummary | None:
        with self._lock:
            return self._summary(self._db, job_id)

    def begin_event_epoch(self) -> int:
        """Take the next event epoch (persisted); returns the id base for this run's events:
        every id this run hands out is above every id an earlier run handed out."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO server_state (key, value) VALUES ('event_epoch', 1)"
                " ON CONFLICT (key) DO UPDATE SET value = value + 1"
            )
            epoch = db.execute(
                "SELECT value FROM server_state WHERE key = 'event_epoch'"
            ).fetchone()[0]
        return int(epoch) * EVENT_EPOCH_SPAN

    def document_count(self) -> int:
        """How many distinct workflow documents the ledger holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM workflows").fetchone()[0])

    def count(self, status: str | None = None) -> int:
        """How many jobs are in `status` (a `JobStatus` or its name), or in the file."""
        with self._counter_lock:
            if status is None:
                return int(self._counter.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
            query = "SELECT COUNT(*) FROM jobs WHERE status = ?"
            return int(self._counter.execute(query, (str(JobStatus(status)),)).fetchone()[0])

    # --- running ------------------------------------------------------------------------

    def claim_next(self) -> JobRecord | None:
        """Move the head of the queue to running (one more attempt) and return it."""
        with self._transaction() as db:
            head = db.execute(
                "SELECT id FROM jobs WHERE status = 'queued'"
                " ORDER BY priority DESC, sequence ASC LIMIT 1"
            ).fetchone()
            if head is None:
                return None
            changed = db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"
                " node_states = '{}' WHERE id = ? AND status = 'queued'",
                (self._clock(), head["id"]),
            ).rowcount
            return self._select(db, head["id"]) if changed else None

    def mark_node(self, job_id: str, node: str, state: NodeState) -> bool:
        """Record how far a running job got; False once the job is no longer running."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT node_states FROM jobs WHERE id = ? AND status = 'running'", (job_id,)
            ).fetchone()
            if row is None:
                return False
            states = json.loads(row["node_states"])
            states[node] = state
            db.execute("UPDATE jobs SET node_states = ? WHERE id = ?", (json.dumps(states), job_id))
            return True

    def set_priority(self, job_id: str, priority: int) -> JobSummary | None:
        """Reorder a queued job; None when it is not queued (too late to reorder)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET priority = ? WHERE id = ? AND status = 'queued'",
                (priority, job_id),
            ).rowcount
            return self._summary(db, job_id) if changed else None

    def move_to_front(self, job_id: str) -> JobSummary | None:
        """Put a queued job ahead of the others of its priority; None when it is not queued."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET sequence = (SELECT MIN(sequence) - 1 FROM jobs)"
                " WHERE id = ? AND status = 'queued'",
                (job_id,),
            ).rowcount
            return self._summary(db, job_id) if changed else None

    def release(self, job_id: str) -> bool:
        """Hand a running job back to the queue without counting the attempt: the server is
        stopping, the job did nothing wrong. False when it is no longer running."""
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0),"
                    " started_at = NULL, node_states = '{}' WHERE id = ? AND status = 'running'",
                    (job_id,),
                ).rowcount
            )

    def requeue_or_fail(self, job_id: str, error: str, node: str | None = None) -> JobRecord | None:
        """A running job whose worker died: back to the queue with the attempt counted, or
        failed with `error` once it has used its attempts. None when it is not running."""
        with self._transaction() as db:
            requeued = db.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, node_states = '{}'"
                " WHERE id = ? AND status = 'running' AND attempts < max_attempts",
                (job_id,),
            ).rowcount
            failure = "status = 'failed', error = ?, error_node = ?"
            if not requeued and not self._write_terminal(
                db, job_id, failure, (error, node), "('running')"
            ):
                return None
            record = self._select(db, job_id)
            if not requeued:
                self._prune(db)
            return record

    # --- terminal writes: the first one wins --------------------------------------------

    def succeed(self, job_id: str, outputs: Mapping[str, Any]) -> bool:
        return self._finish(
            job_id,
            "status = 'succeeded', outputs = ?",
            (json.dumps(outputs),),
            leaving="('running')",
        )

    def fail(self, job_id: str, error: str, node: str | None = None) -> bool:
        """Fail a running job, or a queued one that cannot run."""
        return self._finish(
            job_id, "status = 'failed', error = ?, error_node = ?", (error, node), _LIVE_SQL
        )

    def cancel(self, job_id: str) -> JobSummary | None:
        """Cancel a queued or running job; None when it has already finished (or is unknown).

        Only the ledger changes: whoever stops a running job's worker must also tell it to."""
        with self._transaction() as db:
            if not self._write_terminal(db, job_id, "status = 'cancelled'", (), _LIVE_SQL):
                return None
            record = self._summary(db, job_id)
            self._prune(db)
            return record

    def _finish(self, job_id: str, assignments: str, values: tuple[Any, ...], leaving: str) -> bool:
        with self._transaction() as db:
            changed = self._write_terminal(db, job_id, assignments, values, leaving)
            if changed:
                self._prune(db)
            return changed

    def _write_terminal(
        self,
        db: sqlite3.Connection,
        job_id: str,
        assignments: str,
        values: tuple[Any, ...],
        leaving: str,
    ) -> bool:
        cursor = db.execute(
            f"UPDATE jobs SET {assignments}, finished_at = ? WHERE id = ? AND status IN {leaving}",
            (*values, self._clock(), job_id),
        )
        return bool(cursor.rowcount)

    # --- housekeeping -------------------------------------------------------------------

    def recover_interrupted(self) -> builtins.list[JobSummary]:
        """At start-up, before any worker runs: jobs left running by a dead process go back to
        the queue, or fail once they have used up their attempts. Returns them as changed."""
        with self._transaction() as db:
            ids = [row["id"] for row in db.execute("SELECT id FROM jobs WHERE status = 'running'")]
            db.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, node_states = '{}'"
                " WHERE status = 'running' AND attempts < max_attempts"
            )
            exhausted = db.execute("SELECT id, attempts FROM jobs WHERE status = 'running'")
            for row in exhausted.fetchall():
                self._write_terminal(
                    db,
                    row["id"],
                    "status = 'failed', error = ?",
                    (INTERRUPTED_ERROR.format(n=row["attempts"]),),
                    "('running')",
                )
            records = [record for job_id in ids if (record := self._summary(db, job_id))]
            self._prune(db)
            return records

    def prune(self, keep: int | None = None) -> int:
        """Forget the oldest finished jobs beyond `keep` (default `history_limit`); returns how many."""
        with self._transaction() as db:
            return self._prune(db, self.history_limit if keep is None else keep)

    def forget(self, job_ids: Iterable[str]) -> int:
        """Delete these ended jobs (live ones stay); returns how many were deleted."""
        ids = builtins.list(job_ids)
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        query = f"DELETE FROM jobs WHERE id IN ({marks}) AND status IN {_TERMINAL_SQL}"
        with self._transaction() as db:
            removed = db.execute(query, ids).rowcount
            if removed:
                db.execute(_FORGET_DOCUMENTS)
            return removed

    def _prune(self, db: sqlite3.Connection, keep: int | None = None) -> int:
        removed = db.execute(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
            f" WHERE status IN {_TERMINAL_SQL}"
            " ORDER BY finished_at DESC, sequence DESC LIMIT -1 OFFSET ?)",
            (self.history_limit if keep is None else keep,),
        ).rowcount
        if removed:
            db.execute(_FORGET_DOCUMENTS)
        return removed


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord.with_document(JobSummary.from_row(row), json.loads(row["document"]))


__all__ = [
    "EVENT_EPOCH_SPAN",
    "INTERRUPTED_ERROR",
    "LIVE",
    "TERMINAL",
    "JobExists",
    "JobNotFound",
    "JobNotRetryable",
    "JobRecord",
    "JobStatus",
    "JobSummary",
    "Ledger",
    "NodeState",
    "QueueFull",
]
