"""What ComfyUI's queue needs from the ledger: chosen ids, numbered places, forgetting history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from latentloom.jobs.ledger import JobExists, Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "jobs.sqlite") as opened:
        yield opened


def claim_order(ledger: Ledger) -> list[str]:
    order = []
    while (record := ledger.claim_next()) is not None:
        order.append(record.id)
    return order


def test_a_client_chosen_id_is_kept_and_never_reused(ledger: Ledger) -> None:
    record = ledger.add({"n": 1}, job_id="3f2c-client-uuid", client_id="tab")
    assert record.id == "3f2c-client-uuid" and record.client_id == "tab"
    with pytest.raises(JobExists, match="3f2c-client-uuid"):
        ledger.add({"n": 2}, job_id="3f2c-client-uuid")
    assert ledger.count() == 1
    with pytest.raises(ValueError, match="runs must be 1"):
        ledger.add_many({"n": 3}, 2, job_id="other")


def test_a_numbered_job_takes_the_first_free_place_from_its_number(ledger: Ledger) -> None:
    first = ledger.add({}, job_id="a")  # sequence 1
    second = ledger.add({}, job_id="b")  # sequence 2
    assert (first.sequence, second.sequence) == (1, 2)
    assert ledger.add({}, job_id="between", sequence=1).sequence == 3  # 1 and 2 are taken
    assert ledger.add({}, job_id="early", sequence=-10).sequence == -10
    assert ledger.add({}, job_id="late", sequence=100).sequence == 100
    assert ledger.add({}, job_id="back").sequence == 101
    assert claim_order(ledger) == ["early", "a", "b", "between", "late", "back"]


def test_forget_removes_only_ended_jobs(ledger: Ledger) -> None:
    done = ledger.add({}, job_id="done")
    ledger.claim_next()
    ledger.succeed(done.id, {})
    waiting = ledger.add({}, job_id="waiting")
    assert ledger.forget(["done", "waiting", "unknown"]) == 1
    assert ledger.get("done") is None and ledger.get(waiting.id) is not None
    assert ledger.forget([]) == 0
