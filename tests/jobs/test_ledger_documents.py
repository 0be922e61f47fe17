"""The ledger's document store (schema 2): one copy per workflow, summaries that never read
one, the migration from schema 1, the atomic queue limit and the persisted event epoch."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from latentloom.jobs.ledger import EVENT_EPOCH_SPAN, JobStatus, Ledger, QueueFull
from latentloom.jobs.schema import document_hash


def titled(title: str, size: int = 0) -> dict[str, object]:
    return {"nodes": {}, "meta": {"title": title, "notes": "x" * size}}


def test_each_distinct_document_is_stored_once_and_goes_with_its_last_job(
    ledger: Ledger,
) -> None:
    big = titled("big", size=100_000)
    jobs = ledger.add_many(big, 50)
    ledger.add(big)
    other = ledger.add(titled("other"))
    assert ledger.document_count() == 2
    assert {job.workflow_hash for job in jobs} == {document_hash(json.dumps(big))}
    for job in [*jobs, other]:
        ledger.cancel(job.id)
    ledger.prune(keep=0)
    assert ledger.count() == 1 and ledger.document_count() == 1  # the queued run keeps one
    [last] = ledger.summaries()[0]
    ledger.cancel(last.id)
    assert ledger.forget([last.id]) == 1
    assert ledger.document_count() == 0


def test_summaries_show_title_and_hash_without_reading_any_document(
    ledger: Ledger, ledger_path: Path
) -> None:
    job = ledger.add(titled("portrait"))
    untitled = ledger.add({"nodes": {}})
    with sqlite3.connect(ledger_path) as db:  # a document no reader could parse
        db.execute("UPDATE workflows SET document = '{broken'")
    db.close()
    summaries, total = ledger.summaries()
    assert total == 2
    assert [(s.id, s.title) for s in summaries] == [(job.id, "portrait"), (untitled.id, None)]
    with pytest.raises(json.JSONDecodeError):
        ledger.list()  # the full records do read them


def test_a_schema_1_ledger_is_migrated_with_documents_deduplicated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, workflow TEXT NOT NULL,"
        " priority INTEGER NOT NULL, sequence INTEGER NOT NULL UNIQUE, attempts INTEGER NOT NULL"
        " DEFAULT 0, max_attempts INTEGER NOT NULL, client_id TEXT, created_at REAL NOT NULL,"
        " started_at REAL, finished_at REAL, error TEXT, error_node TEXT, outputs TEXT NOT NULL"
        " DEFAULT '{}', node_states TEXT NOT NULL DEFAULT '{}')"
    )
    rows = [
        ("a", "queued", json.dumps(titled("cat")), 1),
        ("b", "queued", json.dumps(titled("cat")), 2),
        ("c", "succeeded", json.dumps({"nodes": {}}), 3),
    ]
    db.executemany(
        "INSERT INTO jobs (id, status, workflow, priority, sequence, max_attempts, created_at)"
        " VALUES (?, ?, ?, 0, ?, 3, 1.0)",
        rows,
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        assert ledger.document_count() == 2
        assert [job.title for job in ledger.summaries()[0]] == ["cat", "cat", None]
        record = ledger.get("b")
        assert record is not None and record.workflow == titled("cat")
        assert ledger.claim_next() is not None  # the queue still works after the migration


def test_the_queue_limit_is_checked_inside_the_insert(ledger: Ledger, ledger_path: Path) -> None:
    writers = [Ledger(ledger_path) for _ in range(4)]  # separate connections, as processes
    start = threading.Barrier(16)
    refused: list[str] = []

    def submit(index: int) -> None:
        start.wait()
        try:
            writers[index % 4].add(titled(str(index)), max_queued=10)
        except QueueFull as error:
            refused.append(str(error))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.count(JobStatus.QUEUED) == 10
    assert refused == ["the queue is full (10 jobs); try again when some have run"] * 6
    with pytest.raises(QueueFull):
        ledger.add_many(titled("more"), 2, max_queued=11)
    for writer in writers:
        writer.close()


def test_retry_respects_the_queue_limit_and_reuses_the_document(ledger: Ledger) -> None:
    done = ledger.add(titled("again"))
    ledger.cancel(done.id)
    ledger.add(titled("waiting"))
    with pytest.raises(QueueFull, match=r"the queue is full \(1 jobs\)"):
        ledger.retry(done.id, max_queued=1)
    retried = ledger.retry(done.id, max_queued=2)
    assert (retried.title, retried.workflow_hash) == ("again", done.workflow_hash)
    assert ledger.document_count() == 2


def test_event_epochs_grow_across_opens(ledger_path: Path) -> None:
    bases = []
    for _ in range(3):
        with Ledger(ledger_path) as ledger:
            bases.append(ledger.begin_event_epoch())
    assert bases == [EVENT_EPOCH_SPAN, 2 * EVENT_EPOCH_SPAN, 3 * EVENT_EPOCH_SPAN]
    assert bases[-1] + EVENT_EPOCH_SPAN < 2**53  # exact in a JavaScript number
