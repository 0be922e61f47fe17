"""A page of the job list: queued jobs in run order, then running ones, then history.

The list is three groups, each read in an order an index already holds: queued by priority
then sequence (`jobs_queue`), running by start (a handful of rows), ended newest first
(`jobs_ended`, a partial index on exactly the ended statuses). A page walks the groups,
skipping whole groups by their counts, so no page sorts the table: one ORDER BY over every
row made each page of a 10,000-job history cost a 10,000-row sort.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Set
from dataclasses import dataclass
from typing import Final

from latentloom.jobs.records import TERMINAL, JobStatus


@dataclass(frozen=True)
class ListGroup:
    statuses: frozenset[JobStatus]
    order: str  # SQL ORDER BY within the group; `sequence` (unique) breaks every tie
    # The index that holds the group in that order, when the whole group is listed. Named,
    # because without statistics SQLite prefers the (status, finished_at) index and a sort.
    index: str | None = None


GROUPS: Final = (
    ListGroup(frozenset({JobStatus.QUEUED}), "priority DESC, sequence"),
    ListGroup(frozenset({JobStatus.RUNNING}), "started_at, sequence DESC"),
    ListGroup(TERMINAL, "finished_at DESC, sequence DESC", index="jobs_ended"),
)


def status_condition(statuses: Set[JobStatus]) -> str:
    """`status IN ('a', 'b')` with the names inline (they are our enum's, not input): SQLite
    uses a partial index only when the query's condition is written like the index's."""
    return "status IN (" + ", ".join(f"'{status}'" for status in sorted(statuses)) + ")"


def read_page(
    db: sqlite3.Connection,
    columns: str,
    join: str,
    chosen: Set[JobStatus],
    limit: int,
    offset: int,
) -> tuple[list[sqlite3.Row], int]:
    """Rows `offset` to `offset + limit` of the listing of `chosen` statuses, and the total:
    `SELECT {columns} FROM jobs {join}` for each group's slice.

    Call inside one read transaction, so the counts and the rows are one snapshot.
    """
    rows: list[sqlite3.Row] = []
    total = 0
    for group in GROUPS:
        wanted = group.statuses & chosen
        if not wanted:
            continue
        where = f"WHERE {status_condition(wanted)}"
        count = int(db.execute(f"SELECT COUNT(*) FROM jobs {where}").fetchone()[0])
        total += count
        if len(rows) < limit and offset < count:
            hint = f"INDEXED BY {group.index}" if group.index and wanted == group.statuses else ""
            query = (
                f"SELECT {columns} FROM jobs {hint} {join} {where}"
                f" ORDER BY {group.order} LIMIT ? OFFSET ?"
            )
            rows += db.execute(query, (limit - len(rows), offset)).fetchall()
        offset = max(0, offset - count)
    return rows, total
