"""Job-list pages from the page process: the same bytes as built in place, and a page process
that dies is replaced without an error reaching the client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from latentloom.jobs.ledger import Ledger
from latentloom.server.job_pages import PageBuilder, job_list_json


def filled(path: Path) -> Ledger:
    ledger = Ledger(path)
    for index in range(7):
        ledger.add({"meta": {"title": f"job {index}"}})
    for _ in range(4):
        claimed = ledger.claim_next()
        assert claimed is not None
        ledger.succeed(claimed.id, {})
    return ledger


def test_pages_from_the_process_equal_pages_built_in_place(tmp_path: Path) -> None:
    builder = PageBuilder()
    with filled(tmp_path / "ledger.sqlite3") as ledger:
        try:
            for statuses, limit, offset in [(None, 50, 0), (None, 2, 2), ({"succeeded"}, 3, 1)]:
                built = asyncio.run(builder.page(ledger, statuses, limit, offset))
                assert built == job_list_json(ledger, statuses, limit, offset)
            page = json.loads(asyncio.run(builder.page(ledger, None, 50, 0)))
            assert page["total"] == 7
            assert [job["status"] for job in page["jobs"]] == ["queued"] * 3 + ["succeeded"] * 4
            # The child reads what the server commits after it opened the file.
            ledger.add({"meta": {"title": "late"}})
            assert json.loads(asyncio.run(builder.page(ledger, None, 50, 0)))["total"] == 8
        finally:
            builder.close()


def test_a_dead_page_process_is_replaced(tmp_path: Path) -> None:
    builder = PageBuilder()
    with filled(tmp_path / "ledger.sqlite3") as ledger:
        try:
            expected = job_list_json(ledger, None, 50, 0)
            assert asyncio.run(builder.page(ledger, None, 50, 0)) == expected
            pool = builder._get_pool()
            assert pool is not None
            for pid in list(pool._processes):  # the child, killed as an OOM killer would
                os.kill(pid, signal.SIGKILL)
            assert asyncio.run(builder.page(ledger, None, 50, 0)) == expected
            assert asyncio.run(builder.page(ledger, None, 50, 0)) == expected
            assert builder._get_pool() is not pool
        finally:
            builder.close()
