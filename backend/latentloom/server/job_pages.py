"""Pages of the job list as JSON bytes, built in a process of their own.

Paging through a long history is the heaviest thing a client can ask of the server without
sending a body: every 500-job page is rows read, validated and dumped, ~9 ms of Python. In
the server process eight such clients keep a thread holding the GIL most of the time, and
the event loop (which answers everyone else) waits its turn at every step of every request.
So pages are built by a child process that opens the ledger file itself (SQLite's WAL mode
lets it read what the server committed, without locks); the server only forwards bytes.
If the child cannot be used (it died, or processes can't be started), a page is built in a
thread as before: slower for the others, never an error. The child ends itself when the server
is gone: a server killed with SIGKILL never shuts its pool down, and the pool's worker would
otherwise wait on its call queue for good (dozens piled up on a test machine, ~38 MB each).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from latentloom.jobs.ledger import Ledger
from latentloom.server.api_models import JobList, job_view
from latentloom.server.offload import in_ledger_thread

log = logging.getLogger(__name__)
PARENT_CHECK_SECONDS = 1.0  # how often the page process checks that the server still lives


def job_list_json(ledger: Ledger, statuses: Iterable[str] | None, limit: int, offset: int) -> bytes:
    """One page of `GET /api/jobs`: the queue in run order, then running, then history."""
    records, total = ledger.summaries(statuses, limit, offset)
    page = JobList.model_construct(jobs=[job_view(record) for record in records], total=total)
    return page.model_dump_json().encode()


# In the child: one reader per ledger file, opened on first use.
_readers: dict[Path, Ledger] = {}


def _page_in_child(path: Path, statuses: tuple[str, ...] | None, limit: int, offset: int) -> bytes:
    reader = _readers.get(path)
    if reader is None:
        reader = _readers[path] = Ledger(path)
    return job_list_json(reader, statuses, limit, offset)


def _ready() -> None:
    """Nothing: the import of this module in the child is the work."""


def _exit_with(server_pid: int) -> None:
    """In the child, at its start: a thread that ends the process once its parent is gone
    (the child is then re-parented, so its parent pid changes)."""

    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="latentloom-pages-parent", daemon=True).start()


class PageBuilder:
    """Builds job-list pages in one child process (spawned: the server has threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def page(
        self, ledger: Ledger, statuses: Iterable[str] | None, limit: int, offset: int
    ) -> bytes:
        chosen = tuple(sorted(statuses)) if statuses is not None else None
        pool = self._get_pool()
        if pool is not None:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    pool, _page_in_child, ledger.path, chosen, limit, offset
                )
            except (BrokenProcessPool, OSError) as error:
                log.warning("job pages: the page process failed (%s); starting another", error)
                self._discard(pool)
        return await in_ledger_thread(job_list_json, ledger, chosen, limit, offset)

    def start(self) -> None:
        """Start the page process and let it import what it needs, from a thread that can
        wait: starting it (spawn) from the event loop would stall it for a moment."""
        pool = self._get_pool()
        if pool is not None:
            try:
                pool.submit(_ready).result()
            except (BrokenProcessPool, OSError) as error:
                log.warning("job pages: the page process did not start (%s)", error)
                self._discard(pool)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _get_pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None:
                try:
                    context = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(
                        max_workers=1,
                        mp_context=context,
                        initializer=_exit_with,
                        initargs=(os.getpid(),),
                    )
                except OSError as error:  # no processes (a sandbox): pages in a thread
                    log.warning("job pages: cannot start a page process (%s)", error)
                    return None
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)
