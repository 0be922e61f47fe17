"""The event hub: numbers every event, keeps a replay buffer, and fans out to subscribers.

Workers publish from their own threads; the hub hops onto the server's event loop, stamps a
monotonically increasing id (so a reconnecting client can resume after the last id it saw)
and hands each subscriber the frame. Every job's events reach every subscriber of that job
(or of all jobs), whoever queued it.

Previews are not events: they are throttled per job, rendered to JPEG once, and kept in a
two-slot buffer per subscriber that simply overwrites — a slow client loses previews first
and never blocks the job. A subscriber whose event queue overflows is told so and must
resume from its last id.
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
from typing import TYPE_CHECKING

from pydantic import BaseModel

from latentloom.engine.events import JobCancelled, JobFailed, JobFinished

if TYPE_CHECKING:
    from latentloom.engine.events import Preview

TERMINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)
EVENT_QUEUE_LIMIT = 10_000
PREVIEW_SLOTS = 2


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


@dataclass(eq=False)
class Subscription:
    jobs: set[str] | None  # None: every job
    events: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(EVENT_QUEUE_LIMIT))
    previews: deque[PreviewFrame] = field(default_factory=lambda: deque(maxlen=PREVIEW_SLOTS))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    workflows: set[str] = field(default_factory=set)  # saved workflows this client edits live

    def wants(self, job: str | None) -> bool:
        return self.jobs is None or (job is not None and job in self.jobs)


class EventHub:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        buffer_size: int = 10_000,
        previews_per_second: float = 4.0,
    ) -> None:
        self.loop = loop
        self.last_id = 0
        self._buffer: deque[tuple[int, str | None, str]] = deque(maxlen=buffer_size)
        self._subscribers: set[Subscription] = set()
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._preview_interval = 1.0 / previews_per_second
        self._last_preview: dict[str, float] = {}
        self._preview_lock = threading.Lock()

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
        self._buffer.append((self.last_id, job, frame))
        for subscription in list(self._subscribers):
            if subscription.wants(job):
                _offer(subscription, frame)
        if isinstance(event, TERMINAL_EVENTS) and job is not None:
            self._last_preview.pop(job, None)
            for waiter in self._waiters.pop(job, []):
                waiter.set()

    def _dispatch_preview(self, frame: PreviewFrame) -> None:
        for subscription in self._subscribers:
            if subscription.wants(frame.job):
                subscription.previews.append(frame)  # a full deque drops its oldest frame
                subscription.wake.set()

    def subscribe(
        self, jobs: Iterable[str] | None, last_event_id: int | None
    ) -> tuple[Subscription, bool]:
        """A new subscription, pre-filled with buffered events after `last_event_id`.

        Returns (subscription, complete): complete is False when the buffer no longer reaches
        back to `last_event_id`, so some events were missed.
        """
        subscription = Subscription(set(jobs) if jobs is not None else None)
        complete = True
        if last_event_id is not None:
            oldest = self._buffer[0][0] if self._buffer else self.last_id + 1
            complete = last_event_id >= oldest - 1
            for event_id, job, frame in self._buffer:
                if event_id > last_event_id and subscription.wants(job):
                    _offer(subscription, frame)
        self._subscribers.add(subscription)
        return subscription, complete

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def send_to_watchers(self, workflow: str, message: dict[str, object]) -> None:
        """A workflow-sync message to every subscriber watching `workflow` (on the loop thread)."""
        frame = json.dumps(message)
        for subscription in list(self._subscribers):
            if workflow in subscription.workflows:
                _offer(subscription, frame)

    def end_waiter(self, job: str) -> asyncio.Event:
        """An event set when `job` reaches a terminal state (register before checking the ledger)."""
        waiter = asyncio.Event()
        self._waiters.setdefault(job, []).append(waiter)
        return waiter

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


def _offer(subscription: Subscription, frame: str) -> None:
    try:
        subscription.events.put_nowait(frame)
    except asyncio.QueueFull:
        subscription.overflowed = True
    subscription.wake.set()


def _render_jpeg(preview: Preview) -> bytes:
    from latentloom.preview import latent_to_preview

    image = latent_to_preview(preview.latent, preview.family)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
