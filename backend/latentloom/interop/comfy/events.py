"""Our job events, as ComfyUI's websocket messages for one client.

One `ComfyTranslator` per ComfyUI websocket. It reads the hub's event stream (the same one our
own websocket sends) and answers, per event, the ComfyUI messages that client should get:

* every client gets `status {status: {exec_info: {queue_remaining}}}` when the queue changes
  (a job queued, started or ended); queue_remaining counts queued and running jobs, as
  ComfyUI counts pending and running prompts;
* only the client that queued a job (its `client_id`), or every client for a job queued
  without one, gets its progress: `execution_start`, `execution_cached`, `executing`,
  `progress`, `executed`, then `execution_success` / `execution_error` /
  `execution_interrupted`, and `executing {node: null}` last, which is how ComfyUI clients know
  a prompt is done.

ComfyUI announces the cached nodes in one `execution_cached` right after `execution_start`;
our executor reports them one by one as it walks the plan, so they are held back and sent
together just before the next message of that job (and `executed` for a cached output node,
which ComfyUI also sends, follows them). Binary previews are only wanted for a client's own
jobs whose `extra_data.preview_method` asks for them: ComfyUI sends none unless asked, and
clients such as comfy-api-simplified treat any binary frame as a result image.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from latentloom.interop.comfy.jobs_view import comfy_class, comfy_meta, node_output, split_error
from latentloom.jobs.records import JobRecord

PREVIEW_METHODS: Final = frozenset({"auto", "latent2rgb", "taesd"})  # all drawn as latent2rgb
QUEUE_EVENTS: Final = frozenset(
    {"job.queued", "job.started", "job.finished", "job.failed", "job.cancelled"}
)
TERMINAL: Final = frozenset({"job.finished", "job.failed", "job.cancelled"})
MAX_TRACKED_JOBS: Final = 1024
Message = dict[str, Any]


@dataclass
class _Job:
    id: str
    owned: bool  # this client queued it, or nobody did
    previews: bool
    record: JobRecord | None
    started: bool = False
    cached_sent: bool = False
    pending_cached: list[str] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)  # `executed` of cached output nodes
    executed: list[str] = field(default_factory=list)
    current: str | None = None


def wants_previews(record: JobRecord) -> bool:
    extra_data = comfy_meta(record).get("extra_data")
    method = extra_data.get("preview_method") if isinstance(extra_data, dict) else None
    return method in PREVIEW_METHODS


class ComfyTranslator:
    def __init__(
        self,
        client_id: str,
        lookup: Callable[[str], JobRecord | None],
        queue_remaining: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._lookup, self._queue_remaining, self._clock = lookup, queue_remaining, clock
        self._jobs: OrderedDict[str, _Job] = OrderedDict()

    def status(self, *, with_sid: bool = False) -> Message:
        data: dict[str, Any] = {
            "status": {"exec_info": {"queue_remaining": self._queue_remaining()}}
        }
        if with_sid:
            data["sid"] = self.client_id
        return {"type": "status", "data": data}

    def resume(self, running: list[JobRecord]) -> list[Message]:
        """On connect, as ComfyUI does: `executing` for this client's prompt already running."""
        messages = []
        for record in running:
            job = self._job(record.id)
            started = [n for n, state in record.node_states.items() if state == "started"]
            if job.owned and started:
                job.current = started[-1]
                data = self._data(job, node=job.current, display_node=job.current)
                messages.append(_message("executing", data))
        return messages

    def wants_preview(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is not None and job.owned and job.previews

    def translate(self, event: dict[str, Any]) -> list[Message]:
        """The ComfyUI messages for one of our events (as its JSON dict)."""
        kind, job_id = event.get("kind"), event.get("job")
        if not isinstance(job_id, str):
            return []
        job = self._job(job_id)
        messages = self._progress(job, kind, event) if job.owned else []
        if kind in QUEUE_EVENTS:
            messages.append(self.status())
        if kind in TERMINAL:
            self._jobs.pop(job_id, None)
        return messages

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            record = self._lookup(job_id)
            owner = record.client_id if record is not None else None
            # A client that connects mid-run still gets the run's end (not its cached list).
            running = record is not None and record.started_at is not None
            job = _Job(
                job_id,
                owned=owner is None or owner == self.client_id,
                previews=record is not None and wants_previews(record),
                record=record,
                started=running,
                cached_sent=running,
            )
            self._jobs[job_id] = job
            while len(self._jobs) > MAX_TRACKED_JOBS:
                self._jobs.popitem(last=False)  # a job whose end we never saw
        return job

    def _data(self, job: _Job, **fields: Any) -> dict[str, Any]:
        return {**fields, "prompt_id": job.id}

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _progress(self, job: _Job, kind: Any, event: dict[str, Any]) -> list[Message]:
        if kind == "job.queued":
            return []
        if kind == "job.started":
            job.started, job.cached_sent = True, False
            return [_message("execution_start", self._data(job, timestamp=self._now()))]
        node = str(event.get("node"))
        if kind == "node.cached":
            job.pending_cached.append(node)
            job.executed.append(node)
            if node_output(event.get("outputs") or {}):
                job.held.append(self._executed(job, node, event["outputs"]))
            return []
        messages = self._flush(job) if job.started else []
        if kind == "node.started":
            job.current = node
            messages.append(_message("executing", self._data(job, node=node, display_node=node)))
        elif kind == "node.progress":
            data = self._data(job, value=event.get("step"), max=event.get("total"), node=node)
            messages.append(_message("progress", data))
        elif kind == "node.finished":
            job.executed.append(node)
            job.current = None
            if node_output(event.get("outputs") or {}):
                messages.append(self._executed(job, node, event["outputs"]))
        elif kind in TERMINAL and job.started:
            messages.append(self._ending(job, kind, event))
            done = self._data(job, node=None, display_node=None)
            messages.append(_message("executing", done))
        return messages

    def _flush(self, job: _Job) -> list[Message]:
        messages: list[Message] = []
        if not job.cached_sent or job.pending_cached:
            data = self._data(job, nodes=job.pending_cached, timestamp=self._now())
            messages.append(_message("execution_cached", data))
            job.cached_sent, job.pending_cached = True, []
        messages.extend(job.held)
        job.held = []
        return messages

    def _executed(self, job: _Job, node: str, outputs: dict[str, Any]) -> Message:
        data = self._data(job, node=node, display_node=node, output=node_output(outputs))
        return _message("executed", data)

    def _ending(self, job: _Job, kind: str, event: dict[str, Any]) -> Message:
        now = self._now()
        if kind == "job.finished":
            return _message("execution_success", self._data(job, timestamp=now))
        failed = kind == "job.failed"
        node = event.get("node") if failed else job.current
        node_type = comfy_class(job.record, node) if job.record is not None else None
        data = self._data(
            job, node_id=node, node_type=node_type, executed=job.executed, timestamp=now
        )
        if not failed:
            return _message("execution_interrupted", data)
        exception_type, message = split_error(event.get("error"))
        data.update(
            exception_message=message,
            exception_type=exception_type,
            traceback=[],
            current_inputs={},
            current_outputs={},
        )
        return _message("execution_error", data)


def _message(kind: str, data: dict[str, Any]) -> Message:
    return {"type": kind, "data": data}
