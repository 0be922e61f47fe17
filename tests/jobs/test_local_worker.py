"""The in-process worker on a real engine: event streams, cancellation, failures, shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from latentloom.engine.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    NodeFinished,
    NodeProgress,
    NodeStarted,
)
from latentloom.engine.executor import Engine
from latentloom.jobs.dispatch import Dispatcher
from latentloom.jobs.ledger import JobStatus, Ledger
from latentloom.jobs.local_worker import LocalWorker
from tests.jobs.support import Recorder, exploding, slow_count, sum_of
from tests.support import load_example

WorkerFactory = Callable[..., LocalWorker]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def start_worker(ledger: Ledger, recorder: Recorder) -> Iterator[WorkerFactory]:
    """Starts workers on the ledger and stops them (checking they did stop) at the end."""
    started: list[LocalWorker] = []

    def start(engine: Engine | Callable[[], Engine], **options: float) -> LocalWorker:
        worker = LocalWorker(ledger, engine, recorder.publish, recorder.publish_preview, **options)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)
        assert worker._thread is not None and not worker._thread.is_alive()


def test_is_a_dispatcher(ledger: Ledger, arith_engine: Engine, recorder: Recorder) -> None:
    worker = LocalWorker(ledger, arith_engine, recorder.publish, recorder.publish_preview)
    assert isinstance(worker, Dispatcher)


def test_runs_txt2img_and_publishes_the_event_sequence(
    ledger: Ledger, engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    worker = start_worker(engine)
    job = ledger.add(load_example("txt2img.json").to_json())
    worker.wake()
    finished = recorder.ended(job.id, timeout=120)
    assert isinstance(finished, JobFinished), recorder.kinds(job.id)
    events = recorder.of(job.id)
    assert len(events) == len(recorder.events)  # every event carries its job id
    assert isinstance(events[0], JobStarted) and events[-1] is finished
    node_events = [(e.kind, e.node) for e in events if isinstance(e, NodeStarted | NodeFinished)]
    order = ["checkpoint", "positive", "negative", "latent", "sampler", "decode", "save"]
    assert node_events == [(kind, n) for n in order for kind in ("node.started", "node.finished")]
    steps = [(e.step, e.total) for e in events if isinstance(e, NodeProgress)]
    assert steps == [(step, 12) for step in range(1, 13)]
    assert [e.node for e in events if isinstance(e, NodeProgress)] == ["sampler"] * 12
    images = finished.outputs["save"]["images"]
    assert len(images) == 1 and (engine.settings.output_dir / images[0]["filename"]).is_file()
    assert [p.job for p in recorder.previews] == [job.id] * 12
    record = ledger.get(job.id)
    assert record is not None and record.status is JobStatus.SUCCEEDED
    assert record.outputs == finished.outputs
    assert record.node_states == dict.fromkeys(order, "finished")
    assert worker.running() == set()


def test_cancelling_a_running_job_stops_it_within_a_step_and_the_next_job_runs(
    ledger: Ledger, arith_engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    slow, after = ledger.add(slow_count(1000)), ledger.add(sum_of(2, 3))
    worker = start_worker(arith_engine)
    recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.step == 3)
    assert worker.running() == {slow.id}
    assert worker.cancel(slow.id)
    assert isinstance(recorder.ended(slow.id), JobCancelled)
    last_step = max(e.step for e in recorder.of(slow.id) if isinstance(e, NodeProgress))
    assert last_step <= 5  # one step to notice, and a little slack for a slow machine
    assert isinstance(recorder.ended(after.id), JobFinished)
    record = ledger.get(slow.id)
    assert record is not None and record.status is JobStatus.CANCELLED
    assert record.node_states == {"count": "started"}
    assert worker.cancel(slow.id) is False


def test_a_job_cancelled_in_the_ledger_while_running_stays_cancelled(
    ledger: Ledger, arith_engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    """The API cancelled it but the worker finished anyway: the late success must lose."""
    job = ledger.add(slow_count(5))

    def cancel_on_first_step(event: object) -> None:
        recorder.publish(event)  # type: ignore[arg-type]
        if isinstance(event, NodeProgress) and event.step == 1:
            ledger.cancel(job.id)  # not worker.cancel: the run goes on to the end

    worker = LocalWorker(ledger, arith_engine, cancel_on_first_step, recorder.publish_preview)
    worker.start()
    try:
        recorder.wait_for(lambda e: isinstance(e, NodeFinished) and e.node == "out")
        follower = ledger.add(sum_of(1, 1))
        worker.wake()
        assert isinstance(recorder.ended(follower.id), JobFinished)
    finally:
        worker.stop(timeout=30)
    assert not any(isinstance(e, JobFinished | JobCancelled) for e in recorder.of(job.id))
    record = ledger.get(job.id)
    assert record is not None and (record.status, record.outputs) == (JobStatus.CANCELLED, {})


def test_a_failing_node_fails_the_job_with_its_id_and_the_worker_goes_on(
    ledger: Ledger, arith_engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    broken, fine = ledger.add(exploding(7)), ledger.add(sum_of(1, 2))
    start_worker(arith_engine)
    failed = recorder.ended(broken.id)
    assert isinstance(failed, JobFailed)
    assert failed.node == "boom"
    assert (
        failed.error == 'node "boom" (Explode, arith.explode) failed: RuntimeError: cannot handle 7'
    )
    record = ledger.get(broken.id)
    assert record is not None
    assert (record.status, record.error, record.error_node) == (
        JobStatus.FAILED,
        failed.error,
        "boom",
    )
    assert record.node_states["boom"] == "failed"
    finished = recorder.ended(fine.id)
    assert isinstance(finished, JobFinished) and finished.outputs == {"out": {"values": [3]}}


def test_an_invalid_workflow_fails_with_every_problem(
    ledger: Ledger, arith_engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    document = sum_of(1, 2)
    document["nodes"]["a"]["type"] = "arith.nubmer"
    del document["nodes"]["b"]
    job = ledger.add(document)
    start_worker(arith_engine)
    failed = recorder.ended(job.id)
    assert isinstance(failed, JobFailed) and failed.node is None
    assert failed.error == (
        "workflow is invalid:\n"
        "  - node \"a\": unknown node type 'arith.nubmer'; did you mean 'arith.number', "
        "'arith.sink'?\n"
        '  - node "sum" (Add) input \'b\' links to node "b", which does not exist'
    )
    assert recorder.kinds(job.id) == ["job.started", "job.failed"]


def test_an_unexpected_error_fails_the_job_and_the_worker_goes_on(
    ledger: Ledger,
    arith_engine: Engine,
    recorder: Recorder,
    start_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_run = arith_engine.run
    calls = iter([RuntimeError("the cache is on fire")])

    def run_once_badly(*args: object, **kwargs: object) -> object:
        error = next(calls, None)
        if error is not None:
            raise error
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(arith_engine, "run", run_once_badly)
    first, second = ledger.add(sum_of(1, 1)), ledger.add(sum_of(2, 2))
    start_worker(arith_engine)
    failed = recorder.ended(first.id)
    assert isinstance(failed, JobFailed)
    assert failed.error == "internal error: RuntimeError: the cache is on fire"
    assert isinstance(recorder.ended(second.id), JobFinished)


def test_a_subscriber_that_raises_does_not_break_the_job(
    ledger: Ledger,
    arith_engine: Engine,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_publish(event: object) -> None:
        raise ConnectionError("subscriber went away")

    job = ledger.add(sum_of(4, 5))
    done = threading.Event()
    worker = LocalWorker(ledger, arith_engine, broken_publish, recorder.publish_preview)
    original_succeed = ledger.succeed

    def succeed_and_signal(job_id: str, outputs: object) -> bool:
        try:
            return original_succeed(job_id, outputs)  # type: ignore[arg-type]
        finally:
            done.set()

    monkeypatch.setattr(ledger, "succeed", succeed_and_signal)
    worker.start()
    try:
        assert done.wait(30)
    finally:
        worker.stop(timeout=30)
    record = ledger.get(job.id)
    assert record is not None and record.outputs == {"out": {"values": [9]}}
    assert "publishing JobFinished for job" in caplog.text


def test_the_engine_factory_runs_on_the_worker_thread(
    ledger: Ledger, arith_engine: Engine, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    built_on: list[str] = []

    def build() -> Engine:
        built_on.append(threading.current_thread().name)
        return arith_engine

    start_worker(build, poll_seconds=0.1)
    job = ledger.add(sum_of(1, 1))  # no wake(): found by polling, as if another process added it
    assert isinstance(recorder.ended(job.id, timeout=10), JobFinished)
    assert built_on == ["latentloom-worker"]


def test_an_engine_that_cannot_start_fails_each_job_with_the_reason(
    ledger: Ledger, recorder: Recorder, start_worker: WorkerFactory
) -> None:
    def build() -> Engine:
        raise FileNotFoundError("no such model folder: /models")

    job = ledger.add(sum_of(1, 1))
    start_worker(build)
    failed = recorder.ended(job.id)
    assert isinstance(failed, JobFailed)
    assert failed.error == (
        "internal error: the engine could not start: FileNotFoundError: no such model folder: "
        "/models"
    )


def test_stopping_hands_the_running_job_back_to_the_queue(
    ledger_path: Path, arith_engine: Engine, recorder: Recorder
) -> None:
    with Ledger(ledger_path) as ledger:
        job = ledger.add(slow_count(1000))
        worker = LocalWorker(ledger, arith_engine, recorder.publish, recorder.publish_preview)
        worker.start()
        recorder.wait_for(lambda e: isinstance(e, NodeProgress))
        worker.stop(timeout=30)
        assert worker.running() == set()
    with Ledger(ledger_path) as reopened:
        record = reopened.get(job.id)
        assert record is not None and (record.status, record.attempts) == (JobStatus.QUEUED, 0)
    assert recorder.kinds(job.id)[-1] != "job.cancelled"
    assert not any(isinstance(e, JobCancelled) for e in recorder.events)


def test_a_worker_starts_once(ledger: Ledger, arith_engine: Engine, recorder: Recorder) -> None:
    worker = LocalWorker(ledger, arith_engine, recorder.publish, recorder.publish_preview)
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            worker.start()
    finally:
        worker.stop(timeout=30)
