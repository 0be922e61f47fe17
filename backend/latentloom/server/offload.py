"""Blocking work off the event loop, on the right pool.

Two pools, so that cheap calls never queue behind expensive ones: ledger calls (short SQLite
transactions, serialised by the ledger's own lock anyway) run on a small dedicated pool, and
everything heavy (parsing and dumping documents, validation, folder listings) on asyncio's
default pool via `asyncio.to_thread`. With one shared pool, eight clients posting 10 MB
workflows would occupy every thread with JSON and `/api/system`'s queue count would wait
behind them.
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
