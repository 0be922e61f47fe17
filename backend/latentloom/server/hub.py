"""The event hub: numbers every event, keeps a replay buffer, and fans out to subscribers.

Workers publish from their own threads; the hub hops onto the server's event loop, stamps a
monotonically increasing id (so a reconnecting client can resume after the last id it saw)
and hands each subscriber the frame. Every job's events reach every subscriber of that job
(or of all jobs), whoever queued it. Ids keep growing across restarts: at start-up the
server takes the next epoch from the ledger (`begin_epoch`) and counts on from its base, so
an id from before a restart is older than anything buffered and its client is told to
resync (`complete: false`), never that it missed nothing.

Memory per client is bounded in bytes as well as in frames: a subscriber's queue holds at
most `client_bytes` of text (a single larger frame only when nothing else waits, so one big
workflow echo still reaches a client that reads), and the replay buffer at most
`buffer_bytes`. A subscriber that passes its bound is dropped on the spot: its queue is
freed, it stops receiving, and `dropped` tells its connection to close with a reason.
Workflow-sync messages travel through the same queue, so they count against the same bound.

Previews are not events: they are throttled per job, rendered to JPEG once, and kept in a
two-slot buffer per subscriber that simply overwrites — a slow client loses previews first
and never blocks the job.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel

from latentloom.engine.events import JobCancelled, JobFailed, JobFinished

if TYPE_CHECKING:
    from latentloom.engine.events import Preview

TERMINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)
EVENT_QUEUE_LIMIT: Final = 10_000  # frames waiting for one client
CLIENT_BYTE_LIMIT: Final = 4 * 2**20  # bytes of text frames waiting for one client
BUFFER_SIZE: Final = 10_000  # events kept for resuming clients
BUFFER_BYTE_LIMIT: Final = 8 * 2**20
PREVIEW_SLOTS: Final = 2


@dataclass(frozen=True)
class PreviewFrame:
    job: str
    node: str
    step: int
    jpeg: bytes

    def encode(self) -> bytes:
        """Binary websocket frame: 4-byte big-endian header length, JSON header, JPEG bytes."""
        header = json.dumps(
            {"job": self.job, "node": self.node, "step": self.step, "format": "jpeg"}
        )
        encoded = header.encode()
        return struct.pack(">I", len(encoded)) + encoded + self.jpeg


class FrameQueue:
    """Text frames waiting for one client, bounded in count and in bytes.

    Sizes are UTF-8 bytes, as sent. `offer` refuses a frame past either bound, except that an
    empty queue takes any one frame.
    """

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self._frames: deque[tuple[str, int]] = deque()
        self.nbytes = 0

    def offer(self, frame: str) -> bool:
        size = _utf8_size(frame)
        if self._frames and (
            len(self._frames) >= self.max_frames or self.nbytes + size > self.max_bytes
        ):
            return False
        self._frames.append((frame, size))
        self.nbytes += size
        return True

    def empty(self) -> bool:
        return not self._frames

    def qsize(self) -> int:
        return len(self._frames)

    def get_nowait(self) -> str:
        """The oldest frame; asyncio.QueueEmpty when there is none (as asyncio.Queue)."""
        if not self._frames:
            raise asyncio.QueueEmpty
        frame, size = self._frames.popleft()
        self.nbytes -= size
        return frame

    def clear(self) -> None:
        self._frames.clear()
        self.nbytes = 0


@dataclass(eq=False)
class Subscription:
    jobs: set[str] | None  # None: every job
    events: FrameQueue = field(
        default_factory=lambda: FrameQueue(EVENT_QUEUE_LIMIT, CLIENT_BYTE_LIMIT)
    )
    previews: deque[PreviewFrame] = field(default_factory=lambda: deque(maxlen=PREVIEW_SLOTS))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)  # set once, on overflow
    overflowed: bool = False
    workflows: set[str] = field(default_factory=set)  # saved workflows this client edits live

    def wants(self, job: str | None) -> bool:
        return self.jobs is None or (job is not None and job in self.jobs)


class EventHub:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        buffer_size: int = BUFFER_SIZE,
        buffer_bytes: int = BUFFER_BYTE_LIMIT,
        client_bytes: int = CLIENT_BYTE_LIMIT,
        client_frames: int = EVENT_QUEUE_LIMIT,
        previews_per_second: float = 4.0,
    ) -> None:
        self.loop = loop
        self.epoch_base = 0  # ids of this run are above it (see begin_epoch)
        self.last_id = 0
        self.client_bytes, self.client_frames = client_bytes, client_frames
        self._buffer: deque[tuple[int, str | None, str]] = deque()
        self._buffer_size, self._buffer_bytes_limit = buffer_size, buffer_bytes
        self._buffer_bytes = 0
        self._subscribers: set[Subscription] = set()
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._preview_interval = 1.0 / previews_per_second
        self._last_preview: dict[str, float] = {}
        self._preview_lock = threading.Lock()
        self.dropped_count = 0  # subscribers dropped for passing their bound

    def begin_epoch(self, base: int) -> None:
        """Count this run's ids on from `base` (the ledger's `begin_event_epoch`); call once
        at start-up, before any event. A base at or below the ids seen so far is ignored."""
        if base > self.last_id:
            self.epoch_base = self.last_id = base
            self._buffer.clear()
            self._buffer_bytes = 0

    # --- publishing (any thread) ---------------------------------------------------------

    def publish(self, event: BaseModel) -> None:
        self.loop.call_soon_threadsafe(self._dispatch, event)

    def publish_preview(self, preview: Preview) -> None:
        """Throttled to `previews_per_second` per job; rendering happens only if it will be sent."""
        job = preview.job or ""
        now = time.monotonic()
        with self._preview_lock:
            if now - self._last_preview.get(job, float("-inf")) < self._preview_interval:
                return
            self._last_preview[job] = now
        frame = PreviewFrame(job, preview.node, preview.step, _render_jpeg(preview))
        self.loop.call_soon_threadsafe(self._dispatch_preview, frame)

    # --- on the event loop ---------------------------------------------------------------

    def _dispatch(self, event: BaseModel) -> None:
        self.last_id += 1
        job = getattr(event, "job", None)
        frame = json.dumps(
            {"type": "event", "id": self.last_id, "event": event.model_dump(mode="json")}
        )
        self._remember(self.last_id, job, frame)  # event frames are ASCII: len is bytes
        for subscription in list(self._subscribers):
            if subscription.wants(job):
                self.offer(subscription, frame)
        if isinstance(event, TERMINAL_EVENTS) and job is not None:
            self._last_preview.pop(job, None)
            for waiter in self._waiters.pop(job, []):
                waiter.set()

    def _remember(self, event_id: int, job: str | None, frame: str) -> None:
        self._buffer.append((event_id, job, frame))
        self._buffer_bytes += len(frame)
        while self._buffer and (
            len(self._buffer) > self._buffer_size or self._buffer_bytes > self._buffer_bytes_limit
        ):
            self._buffer_bytes -= len(self._buffer.popleft()[2])

    def _dispatch_preview(self, frame: PreviewFrame) -> None:
        for subscription in self._subscribers:
            if subscription.wants(frame.job):
                subscription.previews.append(frame)  # a full deque drops its oldest frame
                subscription.wake.set()

    def offer(self, subscription: Subscription, frame: str) -> bool:
        """Queue a text frame for one subscriber; past its bound it is dropped (False)."""
        if subscription.overflowed:
            return False
        if subscription.events.offer(frame):
            subscription.wake.set()
            return True
        self._drop(subscription)
        return False

    def _drop(self, subscription: Subscription) -> None:
        subscription.overflowed = True
        subscription.events.clear()
        subscription.previews.clear()
        self._subscribers.discard(subscription)
        self.dropped_count += 1
        subscription.dropped.set()
        subscription.wake.set()

    def subscribe(
        self, jobs: Iterable[str] | None, last_event_id: int | None
    ) -> tuple[Subscription, bool]:
        """A new subscription, pre-filled with buffered events after `last_event_id`.

        Returns (subscription, complete): complete is False when the buffer no longer reaches
        back to `last_event_id` (or the id is from an earlier run, or from no run of this
        ledger at all), so some events were missed: the client must reload what it shows.
        """
        subscription = Subscription(
            set(jobs) if jobs is not None else None,
            events=FrameQueue(self.client_frames, self.client_bytes),
        )
        complete = True
        if last_event_id is not None:
            oldest = self._buffer[0][0] if self._buffer else self.last_id + 1
            complete = oldest - 1 <= last_event_id <= self.last_id
            missed = [
                frame
                for event_id, job, frame in self._buffer
                if event_id > last_event_id and subscription.wants(job)
            ]
            if complete and sum(map(len, missed)) > self.client_bytes:
                complete = False  # more than the client may hold: it reloads instead
            for frame in missed if complete else ():
                subscription.events.offer(frame)
            subscription.wake.set()
        self._subscribers.add(subscription)
        return subscription, complete

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def send_to_watchers(self, workflow: str, message: dict[str, object]) -> None:
        """A workflow-sync message to every subscriber watching `workflow` (on the loop thread)."""
        self.send_frame_to_watchers(workflow, json.dumps(message))

    def send_frame_to_watchers(self, workflow: str, frame: str) -> None:
        """`send_to_watchers` for a message already dumped (off the loop, when it is big)."""
        for subscription in list(self._subscribers):
            if workflow in subscription.workflows:
                self.offer(subscription, frame)

    def rename_watched(self, old: str, new: str) -> None:
        """Watchers of `old` now watch `new` (the workflow was renamed)."""
        for subscription in self._subscribers:
            if old in subscription.workflows:
                subscription.workflows.discard(old)
                subscription.workflows.add(new)

    def end_waiter(self, job: str) -> asyncio.Event:
        """An event set when `job` reaches a terminal state (register before checking the ledger)."""
        waiter = asyncio.Event()
        self._waiters.setdefault(job, []).append(waiter)
        return waiter

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def buffered_bytes(self) -> int:
        return self._buffer_bytes


def _utf8_size(frame: str) -> int:
    return len(frame) if frame.isascii() else len(frame.encode("utf-8"))


def _render_jpeg(preview: Preview) -> bytes:
    from latentloom.preview import latent_to_preview

    image = latent_to_preview(preview.latent, preview.family)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
