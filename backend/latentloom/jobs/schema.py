"""The ledger's SQLite schema, versioned with `PRAGMA user_version`.

A fresh file is created at `SCHEMA_VERSION`; an older file is upgraded one step at a time by
`MIGRATIONS` inside the same transaction, so a ledger is never half-migrated; a file written
by a newer Latentloom is refused rather than guessed at.

Version 2 stores each distinct workflow document once, in `workflows` keyed by the SHA-256
of its text, and gives every job the hash and the document's title: listing jobs reads
neither the documents nor JSON. `server_state` holds small persisted counters (the event
epoch, so websocket event ids keep growing across restarts).

Version 3 adds `jobs_ended`, a partial index that holds the history newest first, so a page
of a long history is read in index order instead of sorting the table (`listing.py`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

SCHEMA_VERSION: Final = 3

_JOBS_TABLE: Final = """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        workflow_hash TEXT NOT NULL REFERENCES workflows (hash),
        title TEXT,
        priority INTEGER NOT NULL,
        sequence INTEGER NOT NULL UNIQUE,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        client_id TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        error TEXT,
        error_node TEXT,
        outputs TEXT NOT NULL DEFAULT '{}',
        node_states TEXT NOT NULL DEFAULT '{}'
    )
"""
# The job list's history, newest first; its condition is written as listing.py writes it.
_ENDED_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS jobs_ended ON jobs (finished_at DESC, sequence DESC)"
    " WHERE status IN ('cancelled', 'failed', 'succeeded')"
)
# `sequence` orders jobs of equal priority (FIFO); "front of the queue" takes a number below
# every existing one, so it is unique across all rows, not only the queued ones.
_INDEXES: Final = (
    # claim_next: the head of the queue without a scan.
    "CREATE INDEX jobs_queue ON jobs (status, priority DESC, sequence)",
    # list() and prune(): history newest first.
    "CREATE INDEX jobs_history ON jobs (status, finished_at)",
    # forgetting documents no job refers to any more.
    "CREATE INDEX jobs_workflow ON jobs (workflow_hash)",
    _ENDED_INDEX,
)
_CREATE: Final = (
    "CREATE TABLE workflows (hash TEXT PRIMARY KEY, document TEXT NOT NULL)",
    _JOBS_TABLE,
    *_INDEXES,
    "CREATE TABLE server_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def document_hash(text: str) -> str:
    """The key of a stored document: SHA-256 of its JSON text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_title(workflow: dict[str, Any]) -> str | None:
    """The workflow's `meta.title` when it is a string: what job lists show."""
    meta = workflow.get("meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return title if isinstance(title, str) else None


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Documents move out of `jobs` into `workflows`, once each; jobs keep hash and title."""
    db.execute("CREATE TABLE workflows (hash TEXT PRIMARY KEY, document TEXT NOT NULL)")
    db.execute("CREATE TABLE server_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("ALTER TABLE jobs RENAME TO jobs_v1")
    for index in ("jobs_queue", "jobs_history"):
        db.execute(f"DROP INDEX IF EXISTS {index}")
    db.execute(_JOBS_TABLE)
    columns = (
        "id, status, priority, sequence, attempts, max_attempts, client_id, created_at,"
        " started_at, finished_at, error, error_node, outputs, node_states"
    )
    for row in db.execute(f"SELECT workflow, {columns} FROM jobs_v1").fetchall():
        text, rest = row[0], tuple(row[1:])
        digest = document_hash(text)
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        title = document_title(document) if isinstance(document, dict) else None
        db.execute("INSERT OR IGNORE INTO workflows (hash, document) VALUES (?, ?)", (digest, text))
        db.execute(
            f"INSERT INTO jobs (workflow_hash, title, {columns})"
            f" VALUES (?, ?, {', '.join('?' for _ in rest)})",
            (digest, title, *rest),
        )
    db.execute("DROP TABLE jobs_v1")
    for statement in _INDEXES:
        db.execute(statement)


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    db.execute(_ENDED_INDEX)


# version -> function upgrading a ledger of that version to the next one.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}


class LedgerVersionError(Exception):
    def __init__(self, path: Path, version: int) -> None:
        self.path, self.version = path, version
        super().__init__(
            f"{path} holds a job ledger of schema version {version}, written by a newer "
            f"Latentloom; this one reads versions up to {SCHEMA_VERSION}. Upgrade Latentloom "
            "or point it at another ledger file."
        )


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Create or migrate the schema; `db` must be in autocommit mode (isolation_level=None)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerVersionError(path, version)
        if version == 0:
            for statement in _CREATE:
                db.execute(statement)
            version = SCHEMA_VERSION
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](db)
            version += 1
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
