"""Helpers the job tests share: an event recorder that can wait, and arith workflows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from latentloom.engine.events import JobCancelled, JobFailed, JobFinished, Preview

TERMINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)


class Recorder:
    """Collects what a dispatcher publishes, from any thread, and waits for it."""

    def __init__(self) -> None:
        self.events: list[BaseModel] = []
        self.previews: list[Preview] = []
        self._changed = threading.Condition()

    def publish(self, event: BaseModel) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def publish_preview(self, preview: Preview) -> None:
        with self._changed:
            self.previews.append(preview)

    def wait_for(self, predicate: Callable[[BaseModel], bool], timeout: float = 30.0) -> BaseModel:
        def found() -> BaseModel | None:
            return next((event for event in self.events if predicate(event)), None)

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, timeout), (
                f"no matching event within {timeout}s; got {self.kinds()}"
            )
            event = found()
        assert event is not None
        return event

    def ended(self, job_id: str, timeout: float = 30.0) -> BaseModel:
        """The terminal event of `job_id`, waiting for it."""
        return self.wait_for(
            lambda e: isinstance(e, TERMINAL_EVENTS) and getattr(e, "job", None) == job_id,
            timeout,
        )

    def of(self, job_id: str) -> list[BaseModel]:
        with self._changed:
            return [event for event in self.events if getattr(event, "job", None) == job_id]

    def kinds(self, job_id: str | None = None) -> list[str]:
        events = self.of(job_id) if job_id is not None else list(self.events)
        return [getattr(event, "kind", type(event).__name__) for event in events]


def link(node: str, output: str = "value") -> dict[str, str]:
    return {"node": node, "output": output}


def document(nodes: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "latentloom/workflow", "version": 1, "nodes": nodes}


def sum_of(a: int, b: int) -> dict[str, Any]:
    """Adds two numbers; the sink reports {"values": [a + b]}."""
    return document(
        {
            "a": {"type": "arith.number", "inputs": {"value": a}},
            "b": {"type": "arith.number", "inputs": {"value": b}},
            "sum": {"type": "arith.add", "inputs": {"a": link("a"), "b": link("b")}},
            "out": {"type": "arith.sink", "inputs": {"value": link("sum")}},
        }
    )


def slow_count(steps: int, seconds_per_step: float = 0.01) -> dict[str, Any]:
    return document(
        {
            "count": {
                "type": "arith.count_slowly",
                "inputs": {"steps": steps, "seconds_per_step": seconds_per_step},
            },
            "out": {"type": "arith.sink", "inputs": {"value": link("count")}},
        }
    )


def exploding(value: int) -> dict[str, Any]:
    return document(
        {
            "n": {"type": "arith.number", "inputs": {"value": value}},
            "boom": {"type": "arith.explode", "inputs": {"value": link("n")}},
            "out": {"type": "arith.sink", "inputs": {"value": link("boom")}},
        }
    )
