"""The ledger on real SQLite files: queue order, atomic claims, final states, restarts."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from latentloom.jobs.ledger import (
    INTERRUPTED_ERROR,
    JobNotFound,
    JobNotRetryable,
    JobStatus,
    Ledger,
)
from latentloom.jobs.schema import LedgerVersionError


def ticking_clock(start: float = 1000.0) -> Callable[[], float]:
    """Every call is one second later: orderings by time are then exact."""
    counter = itertools.count()
    return lambda: start + next(counter)


def workflow(label: str) -> dict[str, str]:
    return {"label": label}  # the ledger stores documents; it does not validate them


def claim_all(ledger: Ledger) -> list[str]:
    labels = []
    while (record := ledger.claim_next()) is not None:
        labels.append(record.workflow["label"])
    return labels


def test_priority_then_fifo_and_front_jobs_jump_their_priority(ledger: Ledger) -> None:
    submissions = [
        ("a", 0, False),
        ("b", 0, False),
        ("c", 5, False),
        ("d", 0, True),
        ("e", 5, False),
        ("f", -1, False),
        ("g", 0, False),
        ("h", 5, True),
        ("i", 0, True),
        ("j", -1, True),
    ]
    for label, priority, front in submissions:
        ledger.add(workflow(label), priority=priority, front=front)
    expected = ["h", "c", "e", "i", "d", "a", "b", "g", "j", "f"]
    queued, total = ledger.list({JobStatus.QUEUED})
    assert total == 10
    assert [job.workflow["label"] for job in queued] == expected
    assert claim_all(ledger) == expected


def test_add_many_queues_runs_in_submission_order_even_at_the_front(ledger: Ledger) -> None:
    ledger.add(workflow("old"))
    runs = ledger.add_many(workflow("new"), 3, priority=0, front=True, client_id="tab-1")
    assert [r.sequence for r in runs] == sorted(r.sequence for r in runs)
    assert all(r.client_id == "tab-1" and r.status is JobStatus.QUEUED for r in runs)
    claimed = [ledger.claim_next() for _ in range(3)]
    assert [record.id for record in claimed if record] == [record.id for record in runs]
    assert claim_all(ledger) == ["old"]
    with pytest.raises(ValueError, match="runs must be at least 1, got 0"):
        ledger.add_many(workflow("none"), 0)


@pytest.mark.parametrize("connections", ["shared", "one per thread"])
def test_concurrent_claims_never_hand_out_a_job_twice(ledger_path: Path, connections: str) -> None:
    with Ledger(ledger_path) as setup:
        ids = {record.id for record in setup.add_many(workflow("x"), 200)}
    claimed: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)
    shared = Ledger(ledger_path)

    def claim(slot: int) -> None:
        own = shared if connections == "shared" else Ledger(ledger_path)
        start.wait()
        while (record := own.claim_next()) is not None:
            claimed[slot].append(record.id)
        if own is not shared:
            own.close()

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [job_id for per_thread in claimed for job_id in per_thread]
    assert len(everything) == len(set(everything)) == 200
    assert set(everything) == ids
    assert shared.count(JobStatus.RUNNING) == 200
    assert all(record.attempts == 1 for record in shared.list(limit=500)[0])
    shared.close()


def test_terminal_states_are_final(ledger: Ledger) -> None:
    job = ledger.add(workflow("x"))
    ledger.claim_next()
    cancelled = ledger.cancel(job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert ledger.succeed(job.id, {"save": {"images": []}}) is False
    assert ledger.fail(job.id, "too late") is False
    assert ledger.cancel(job.id) is None
    assert ledger.mark_node(job.id, "save", "finished") is False
    assert ledger.release(job.id) is False
    assert ledger.get_summary(job.id) == cancelled


def test_outcomes_record_outputs_errors_and_node_states(ledger: Ledger) -> None:
    good, bad = ledger.add(workflow("good")), ledger.add(workflow("bad"))
    ledger.claim_next()
    assert ledger.mark_node(good.id, "load", "cached")
    assert ledger.mark_node(good.id, "save", "started")
    assert ledger.mark_node(good.id, "save", "finished")
    assert ledger.succeed(good.id, {"save": {"images": [{"filename": "a.png"}]}})
    done = ledger.get(good.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert done.outputs == {"save": {"images": [{"filename": "a.png"}]}}
    assert done.node_states == {"load": "cached", "save": "finished"}
    assert done.started_at is not None and done.finished_at is not None
    ledger.claim_next()
    assert ledger.fail(bad.id, "it broke", node="save")
    failed = ledger.get(bad.id)
    assert failed is not None and (failed.status, failed.error, failed.error_node) == (
        JobStatus.FAILED,
        "it broke",
        "save",
    )


def test_a_queued_job_cannot_succeed_but_can_fail_or_be_cancelled(ledger: Ledger) -> None:
    first, second = ledger.add(workflow("1")), ledger.add(workflow("2"))
    assert ledger.succeed(first.id, {}) is False
    assert ledger.fail(first.id, "cannot run")
    cancelled = ledger.cancel(second.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert ledger.claim_next() is None


def test_interrupted_jobs_are_requeued_then_failed_after_max_attempts(ledger_path: Path) -> None:
    with Ledger(ledger_path, max_attempts=2) as first_run:
        job = first_run.add(workflow("x"))
        first_run.claim_next()  # and then the process dies
    with Ledger(ledger_path, max_attempts=2) as second_run:
        [requeued] = second_run.recover_interrupted()
        assert (requeued.status, requeued.attempts, requeued.started_at) == (
            JobStatus.QUEUED,
            1,
            None,
        )
        claimed = second_run.claim_next()
        assert claimed is not None and claimed.attempts == 2
    with Ledger(ledger_path, max_attempts=2) as third_run:
        [failed] = third_run.recover_interrupted()
        assert failed.id == job.id and failed.status is JobStatus.FAILED
        assert failed.error == (
            "interrupted: the server stopped while running this job 2 times; giving up"
        )
        assert failed.error == INTERRUPTED_ERROR.format(n=2)
        assert third_run.recover_interrupted() == []


def test_queued_jobs_survive_reopening_the_file(ledger_path: Path) -> None:
    with Ledger(ledger_path) as before:
        added = [before.add(workflow(str(i)), priority=i % 2) for i in range(3)]
        before_order = before.list()[0]
    with Ledger(ledger_path) as after:
        assert after.list() == (before_order, 3)
        assert {record.id for record in before_order} == {record.id for record in added}
        assert claim_all(after) == ["1", "0", "2"]


def test_release_hands_a_running_job_back_without_counting_the_attempt(ledger: Ledger) -> None:
    job = ledger.add(workflow("x"))
    ledger.claim_next()
    ledger.mark_node(job.id, "a", "started")
    assert ledger.release(job.id)
    released = ledger.get(job.id)
    assert released is not None
    assert (released.status, released.attempts, released.node_states) == (
        JobStatus.QUEUED,
        0,
        {},
    )


def test_prune_keeps_the_newest_history_and_every_live_job(ledger_path: Path) -> None:
    with Ledger(ledger_path, history_limit=3, clock=ticking_clock()) as ledger:
        finished = []
        for i in range(5):
            job = ledger.add(workflow(str(i)))
            ledger.claim_next()
            ledger.succeed(job.id, {})  # prunes as it goes
            finished.append(job.id)
        waiting = ledger.add(workflow("waiting"))
        history, total = ledger.list({JobStatus.SUCCEEDED})
        assert total == 3
        assert [record.id for record in history] == finished[:1:-1]  # newest first
        assert ledger.get(waiting.id) is not None
        assert ledger.get(finished[0]) is None
        assert ledger.prune() == 0


def test_list_orders_queue_then_running_then_history_and_pages(ledger_path: Path) -> None:
    with Ledger(ledger_path, clock=ticking_clock()) as ledger:
        old, new, running = (ledger.add(workflow(label)) for label in ("old", "new", "run"))
        for job in (old, new, running):
            claimed = ledger.claim_next()
            assert claimed is not None and claimed.id == job.id
        ledger.fail(old.id, "x")
        ledger.cancel(new.id)
        low, high = ledger.add(workflow("low")), ledger.add(workflow("high"), priority=9)
        everything, total = ledger.list()
        assert total == 5
        assert [r.id for r in everything] == [high.id, low.id, running.id, new.id, old.id]
        page, total = ledger.list(limit=2, offset=2)
        assert ([r.id for r in page], total) == ([running.id, new.id], 5)
        history, total = ledger.list({JobStatus.FAILED, JobStatus.CANCELLED})
        assert ([r.id for r in history], total) == ([new.id, old.id], 2)
        assert ledger.list(set()) == ([], 0)
        by_name, total = ledger.list(["queued"])  # names work as well as members
        assert ([r.id for r in by_name], total) == ([high.id, low.id], 2)
        assert ledger.count() == 5
        assert ledger.count(JobStatus.QUEUED) == ledger.count("queued") == 2
        with pytest.raises(ValueError, match="'done' is not a valid JobStatus"):
            ledger.list(["done"])


def test_reordering_works_only_while_queued(ledger: Ledger) -> None:
    first, second, third = (ledger.add(workflow(label)) for label in "123")
    moved = ledger.move_to_front(third.id)
    assert moved is not None and moved.sequence < first.sequence
    raised = ledger.set_priority(second.id, 1)
    assert raised is not None and raised.priority == 1
    assert claim_all(ledger) == ["2", "3", "1"]
    assert ledger.set_priority(first.id, 5) is None
    assert ledger.move_to_front(first.id) is None


def test_retry_queues_a_copy_of_a_finished_job(ledger: Ledger) -> None:
    job = ledger.add(workflow("x"), priority=3, client_id="tab")
    with pytest.raises(JobNotRetryable) as not_yet:
        ledger.retry(job.id)
    assert str(not_yet.value) == (
        f"job {job.id!r} is queued; only succeeded, failed or cancelled jobs can be retried "
        "(cancel it first to start over)"
    )
    ledger.claim_next()
    ledger.fail(job.id, "boom", node="n")
    again = ledger.get(ledger.retry(job.id).id)
    assert again is not None and again.id != job.id
    assert (again.status, again.workflow, again.priority, again.client_id, again.attempts) == (
        JobStatus.QUEUED,
        {"label": "x"},
        3,
        "tab",
        0,
    )
    assert (again.error, again.error_node) == (None, None)
    with pytest.raises(JobNotFound, match="no job 'nope' in the ledger"):
        ledger.retry("nope")


def test_a_ledger_from_a_newer_release_is_refused(ledger_path: Path) -> None:
    with Ledger(ledger_path):
        pass
    with sqlite3.connect(ledger_path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LedgerVersionError) as error:
        Ledger(ledger_path)
    assert str(error.value) == (
        f"{ledger_path} holds a job ledger of schema version 99, written by a newer "
        "Latentloom; this one reads versions up to 3. Upgrade Latentloom or point it at "
        "another ledger file."
    )


def test_the_file_uses_wal_and_records_its_schema_version(ledger_path: Path) -> None:
    with Ledger(ledger_path):
        pass
    db = sqlite3.connect(ledger_path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        db.close()
