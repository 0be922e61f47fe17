"""FreshEnough: /api/system's queue counts never wait on a busy ledger after the first read."""

from __future__ import annotations

import asyncio
import threading

from latentloom.server.fresh_enough import FreshEnough


def test_a_stale_value_is_answered_at_once_while_a_fresh_one_is_read() -> None:
    now = [0.0]
    reads = [0]
    release = threading.Event()

    def read() -> int:
        reads[0] += 1
        if reads[0] > 1:
            release.wait(5)  # the second read is slow: a busy ledger
        return reads[0]

    async def scenario() -> list[int]:
        value = FreshEnough(read, max_age_s=0.25, clock=lambda: now[0])
        seen = [await value.get()]  # the first read is awaited
        now[0] = 0.1
        seen.append(await value.get())  # fresh enough: no read
        now[0] = 1.0
        seen.append(await asyncio.wait_for(value.get(), 1))  # stale: answered at once
        seen.append(await value.get())  # a refresh is under way: not a second one
        release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if await value.get() == 2:
                break
        seen.append(await value.get())
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 2]
    assert reads[0] == 2


def test_a_failed_refresh_keeps_the_last_value_and_the_next_call_retries() -> None:
    now = [0.0]
    outcomes: list[object] = [1, RuntimeError("ledger busy"), 3]

    def read() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, int)
        return outcome

    async def scenario() -> list[int]:
        value = FreshEnough(read, max_age_s=0.25, clock=lambda: now[0])
        seen = [await value.get()]
        now[0] = 1.0
        seen.append(await value.get())  # starts a refresh that fails
        await asyncio.sleep(0.05)
        seen.append(await value.get())  # still the old value; starts another refresh
        await asyncio.sleep(0.05)
        seen.append(await value.get())
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 3]
