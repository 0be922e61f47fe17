"""The API-facing queue: each change to the ledger announced once, the worker woken."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from latentloom.engine.events import JobCancelled, JobFinished, JobQueued, NodeProgress
from latentloom.engine.executor import Engine
from latentloom.jobs.ledger import JobStatus, Ledger
from latentloom.jobs.local_worker import LocalWorker
from latentloom.jobs.queue import JobQueue
from tests.jobs.support import Recorder, slow_count, sum_of


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def queue(ledger: Ledger, arith_engine: Engine, recorder: Recorder) -> Iterator[JobQueue]:
    # A poll this long means every job below ran because the queue woke the worker.
    worker = LocalWorker(
        ledger, arith_engine, recorder.publish, recorder.publish_preview, poll_seconds=600
    )
    worker.start()
    yield JobQueue(ledger, worker, recorder.publish)
    worker.stop(timeout=30)


def test_submitting_announces_each_run_and_wakes_the_worker(
    queue: JobQueue, recorder: Recorder
) -> None:
    records = queue.submit(sum_of(1, 2), runs=3, client_id="tab")
    for record in records:
        assert isinstance(recorder.ended(record.id), JobFinished)
        assert recorder.kinds(record.id)[:2] == ["job.queued", "job.started"]
    assert [e.job for e in recorder.events if isinstance(e, JobQueued)] == [r.id for r in records]


def test_cancelling_a_running_job_announces_its_end_exactly_once(
    queue: JobQueue, recorder: Recorder, ledger: Ledger
) -> None:
    [slow] = queue.submit(slow_count(1000))
    [after] = queue.submit(sum_of(1, 1))
    recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == slow.id)
    cancelled = queue.cancel(slow.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert isinstance(recorder.ended(after.id), JobFinished)  # so the slow run is over
    kinds = recorder.kinds(slow.id)
    assert kinds.count("job.cancelled") == 1 and kinds[-1] == "job.cancelled"
    assert "job.finished" not in kinds
    assert queue.cancel(slow.id) is None
    assert [e for e in recorder.events if isinstance(e, JobCancelled)] == [
        JobCancelled(job=slow.id)
    ]
    record = ledger.get(slow.id)
    assert record is not None and record.status is JobStatus.CANCELLED


def test_a_cancelled_queued_job_never_starts(
    queue: JobQueue, recorder: Recorder, ledger: Ledger
) -> None:
    [slow] = queue.submit(slow_count(1000))
    [waiting] = queue.submit(sum_of(1, 1))
    recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == slow.id)
    assert queue.cancel(waiting.id) is not None
    queue.cancel(slow.id)
    recorder.ended(slow.id)
    [marker] = queue.submit(sum_of(2, 2))
    recorder.ended(marker.id)  # the worker has looked at the queue since
    assert recorder.kinds(waiting.id) == ["job.queued", "job.cancelled"]
    assert ledger.count(JobStatus.QUEUED) == 0


def test_retry_queues_and_runs_a_copy(queue: JobQueue, recorder: Recorder) -> None:
    [first] = queue.submit(sum_of(5, 5))
    recorder.ended(first.id)
    again = queue.retry(first.id)
    finished = recorder.ended(again.id)
    assert isinstance(finished, JobFinished) and finished.outputs == {"out": {"values": [10]}}
