"""Blocking work off the event loop, on the right pool.

Separate pools, so that cheap calls never queue behind expensive ones: ledger calls (short
SQLite transactions, serialised by the ledger's own lock anyway) run on a small dedicated
pool; parsing, validating and dumping request documents on a one-thread "heavy" pool, so at
most one long C-level GIL hold (reading a 10 MB body) is ever ahead of the event loop (eight
clients posting 10 MB workflows would otherwise keep a dozen threads contending with it;
the GIL serialises that work anyway, so one thread costs no throughput); the rest (folder listings, file reads) on asyncio's default pool via `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

LEDGER_THREADS: Final = 4
_ledger_pool = ThreadPoolExecutor(
    max_workers=LEDGER_THREADS, thread_name_prefix="latentloom-ledger"
)


async def in_ledger_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` on the ledger pool; for SQLite calls, not for parsing."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_ledger_pool, functools.partial(function, *args, **kwargs))


# Parsing, validating and dumping big documents hold the GIL for long stretches; one at a
# time keeps the event loop's wait for the GIL to one such stretch.
HEAVY_THREADS: Final = 1
_heavy_pool = ThreadPoolExecutor(max_workers=HEAVY_THREADS, thread_name_prefix="latentloom-heavy")


async def in_heavy_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` on the small pool for document-sized CPU work."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_heavy_pool, functools.partial(function, *args, **kwargs))
