"""The job list read group by group: pages agree with the whole list, and long histories are
read in index order, never sorted per page."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from latentloom.jobs.ledger import Ledger
from latentloom.jobs.listing import status_condition
from latentloom.jobs.records import TERMINAL
from tests.jobs.test_ledger import ticking_clock, workflow


def mixed_ledger(path: Path) -> Ledger:
    """3 queued (two priorities), 2 running, and 6 ended of every kind, in a known order."""
    ledger = Ledger(path, clock=ticking_clock())
    for index in range(8):
        ledger.add(workflow(f"done-{index}"))
    for index in range(8):
        claimed = ledger.claim_next()
        assert claimed is not None
        if index in (0, 3):
            ledger.succeed(claimed.id, {})
        elif index in (1, 4):
            ledger.fail(claimed.id, "x")
        elif index in (2, 5):
            ledger.cancel(claimed.id)
    ledger.add(workflow("low"))
    ledger.add(workflow("high"), priority=5)
    ledger.add(workflow("low-2"))
    return ledger


def test_every_page_is_a_slice_of_the_whole_list(ledger_path: Path) -> None:
    with mixed_ledger(ledger_path) as ledger:
        whole, total = ledger.list()
        assert total == len(whole) == 11
        ids = [record.id for record in whole]
        assert [r.status.value for r in whole[:5]] == ["queued"] * 3 + ["running"] * 2
        for limit in (1, 2, 3, 4, 11, 20):
            for offset in range(0, 13):
                page, page_total = ledger.summaries(None, limit, offset)
                assert page_total == 11
                assert [r.id for r in page] == ids[offset : offset + limit], (limit, offset)


def test_a_whole_history_is_read_in_index_order(ledger_path: Path) -> None:
    with Ledger(ledger_path):
        pass
    db = sqlite3.connect(ledger_path)
    try:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM jobs INDEXED BY jobs_ended"
            f" WHERE {status_condition(TERMINAL)} ORDER BY finished_at DESC, sequence DESC"
        ).fetchall()
    finally:
        db.close()
    details = " ".join(row[-1] for row in plan)
    assert "jobs_ended" in details and "TEMP B-TREE" not in details


def test_a_version_2_ledger_gains_the_history_index(ledger_path: Path) -> None:
    with Ledger(ledger_path) as ledger:
        ledger.add(workflow("kept"))
    db = sqlite3.connect(ledger_path)
    with db:
        db.execute("DROP INDEX jobs_ended")
        db.execute("PRAGMA user_version = 2")
    db.close()
    with Ledger(ledger_path) as ledger:
        assert [r.workflow for r in ledger.list()[0]] == [workflow("kept")]
    db = sqlite3.connect(ledger_path)
    try:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "jobs_ended" in names
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        db.close()
