"""A value read in a thread, answered from the last read while a fresher one is fetched.

`/api/system` must answer within 100 ms however busy the server is, and a SQLite count in a
worker thread can wait that long for a thread and the GIL while eight clients page through a
long history. So the route answers with the last counts (at most `max_age_s` old, or as old
as the slowest refresh) and starts a refresh in the background when they are older; only the
very first call waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FreshEnough(Generic[T]):
    def __init__(
        self,
        read: Callable[[], T],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._max_age_s, self._clock = read, max_age_s, clock
        self._value: tuple[T, float] | None = None  # the last value and when it was read
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> T:
        """The last value; a refresh starts when it is older than `max_age_s`."""
        if self._value is None:
            await self._refresh()
        elif self._clock() - self._value[1] > self._max_age_s and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh())
            self._refreshing.add_done_callback(self._refreshed)
        assert self._value is not None
        return self._value[0]

    async def _refresh(self) -> None:
        read_at = self._clock()
        value = await asyncio.to_thread(self._read)
        self._value = (value, read_at)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshing = None
        if not task.cancelled():
            task.exception()  # a failed refresh keeps the last value; the next call retries
