"""The ledger's SQLite schema, versioned with `PRAGMA user_version`.

A fresh file is created at `SCHEMA_VERSION`; an older file is upgraded one step at a time by
`MIGRATIONS` inside the same transaction, so a ledger is never half-migrated; a file written
by a newer Latentloom is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

SCHEMA_VERSION: Final = 1

# `sequence` orders jobs of equal priority (FIFO); "front of the queue" takes a number below
# every existing one, so it is unique across all rows, not only the queued ones.
_CREATE: Final = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        workflow TEXT NOT NULL,
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
    """,
    # claim_next: the head of the queue without a scan.
    "CREATE INDEX jobs_queue ON jobs (status, priority DESC, sequence)",
    # list() and prune(): history newest first.
    "CREATE INDEX jobs_history ON jobs (status, finished_at)",
)

# version -> function upgrading a ledger of that version to the next one (none yet).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


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
