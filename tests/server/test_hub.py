"""The event hub on a real event loop: byte bounds per client and for the replay buffer,
dropping a client that falls behind, and resuming across epochs."""

from __future__ import annotations

import asyncio
import json

from latentloom.engine.events import JobQueued, NodeProgress
from latentloom.server.hub import EventHub, FrameQueue

MIB = 2**20


def progress(job: str, step: int) -> NodeProgress:
    return NodeProgress(job=job, node="sampler", step=step, total=1000)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_frame_queue_bounds_bytes_and_count_but_takes_one_big_frame_when_empty() -> None:
    queue = FrameQueue(max_frames=3, max_bytes=100)
    assert queue.offer("x" * 500)  # alone: a big echo still reaches a reading client
    assert not queue.offer("y")
    assert queue.get_nowait() == "x" * 500 and queue.nbytes == 0
    assert queue.offer("a" * 60) and not queue.offer("b" * 41) and queue.offer("c" * 40)
    assert queue.nbytes == 100
    assert queue.offer("z") is False  # full on bytes
    queue.get_nowait()
    assert queue.offer("é" * 30)  # 60 bytes as UTF-8, counted as such
    assert queue.nbytes == 100
    many = FrameQueue(max_frames=2, max_bytes=10**6)
    assert many.offer("1") and many.offer("2") and not many.offer("3")


def test_a_client_past_its_byte_bound_is_dropped_and_freed() -> None:
    async def main() -> None:
        hub = EventHub(asyncio.get_running_loop(), client_bytes=64 * 1024)
        slow, _ = hub.subscribe(None, None)
        other, _ = hub.subscribe(["job-b"], None)
        for step in range(2000):
            hub.publish(progress("job-a", step))
        await settle()
        assert slow.dropped.is_set() and slow.overflowed
        assert slow.events.empty() and slow.events.nbytes == 0
        assert hub.subscriber_count == 1 and hub.dropped_count == 1
        assert not other.dropped.is_set() and other.events.empty()  # not its job
        hub.publish(progress("job-a", 2001))
        await settle()
        assert slow.events.empty()  # a dropped client receives nothing more

    asyncio.run(main())


def test_workflow_echoes_count_against_the_same_bound() -> None:
    async def main() -> None:
        hub = EventHub(asyncio.get_running_loop(), client_bytes=MIB)
        watcher, _ = hub.subscribe(None, None)
        watcher.workflows.add("shared")
        patch = {"meta": {"notes": "n" * 300_000}}
        for revision in range(5):
            hub.send_to_watchers(
                "shared", {"type": "workflow.patched", "revision": revision, "patch": patch}
            )
        assert watcher.dropped.is_set() and hub.subscriber_count == 0

    asyncio.run(main())


def test_the_replay_buffer_is_bounded_in_bytes_and_resume_says_what_was_missed() -> None:
    async def main() -> None:
        hub = EventHub(asyncio.get_running_loop(), buffer_bytes=50_000)
        hub.begin_epoch(7 * 2**32)
        for step in range(2000):
            hub.publish(progress("job", step))
        await settle()
        assert hub.buffered_bytes <= 50_000
        assert hub.last_id == 7 * 2**32 + 2000
        recent, complete = hub.subscribe(None, hub.last_id - 10)
        assert complete and recent.events.qsize() == 10
        frames = [json.loads(recent.events.get_nowait()) for _ in range(10)]
        assert [frame["id"] for frame in frames] == list(range(hub.last_id - 9, hub.last_id + 1))
        assert hub.subscribe(None, 7 * 2**32 + 1)[1] is False  # dropped from the buffer
        assert hub.subscribe(None, 6 * 2**32 + 5)[1] is False  # from an earlier run
        assert hub.subscribe(None, hub.last_id + 1)[1] is False  # from no run of this ledger
        assert hub.subscribe(None, hub.last_id)[1] is True

    asyncio.run(main())


def test_a_fresh_epoch_tells_every_older_id_to_resync() -> None:
    async def main() -> None:
        hub = EventHub(asyncio.get_running_loop())
        hub.begin_epoch(2 * 2**32)
        assert hub.subscribe(None, 2**32 + 40)[1] is False
        assert hub.subscribe(None, 2 * 2**32)[1] is True  # nothing happened since
        hub.publish(JobQueued(job="j"))
        await settle()
        resumed, complete = hub.subscribe(None, 2 * 2**32)
        assert complete and json.loads(resumed.events.get_nowait())["id"] == 2 * 2**32 + 1

    asyncio.run(main())


def test_a_replay_larger_than_the_client_bound_is_a_resync_not_a_flood() -> None:
    async def main() -> None:
        hub = EventHub(asyncio.get_running_loop(), client_bytes=20_000)
        start = hub.last_id
        for step in range(1000):
            hub.publish(progress("job", step))
        await settle()
        subscription, complete = hub.subscribe(None, start)
        assert complete is False and subscription.events.empty()
        assert not subscription.dropped.is_set()

    asyncio.run(main())
