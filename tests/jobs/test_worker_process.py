"""The worker child process: the same events as in-process, cancel and stop reaching into the
child, and deaths (SIGKILL, a real failed allocation) that the real server outlives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from latentloom.engine.events import JobFailed, JobFinished, NodeProgress
from latentloom.engine.executor import Engine
from latentloom.jobs.dispatch import Dispatcher, ReportsStatus
from latentloom.jobs.ledger import JobStatus, Ledger
from latentloom.jobs.local_worker import LocalWorker
from latentloom.jobs.queue import JobQueue
from latentloom.jobs.worker_process import WorkerProcess
from latentloom.jobs.worker_protocol import WorkerConfig
from tests.jobs.support import Recorder, document, slow_count, sum_of
from tests.server.api_server import free_port, running_server, wait_until_ready
from tests.support import ARITH_PACK, REPO, load_example

CRASH_PACK = REPO / "tests" / "fixtures" / "packs" / "crash"
GIB = 2**30


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def worker_config(folder: Path, **overrides: Any) -> WorkerConfig:
    values: dict[str, Any] = {
        "model_dirs": (),
        "output_dir": folder / "output",
        "input_dir": folder / "input",
        "device": "cpu",
        "node_packs": (ARITH_PACK,),
        **overrides,
    }
    return WorkerConfig(**values)


def txt2img(steps: int) -> dict[str, Any]:
    return load_example("txt2img.json").with_input("sampler", "steps", steps).to_json()


# --- the dispatcher on its own --------------------------------------------------------------


@dataclass
class Shared:
    ledger: Ledger
    recorder: Recorder
    worker: WorkerProcess
    output_dir: Path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Shared]:
    """One warm worker process for the tests that leave it alive."""
    folder = tmp_path_factory.mktemp("worker")
    recorder = Recorder()
    with Ledger(folder / "jobs.sqlite") as ledger:
        config = worker_config(folder, model_dirs=(models_dir,))
        worker = WorkerProcess(ledger, config, recorder.publish, recorder.publish_preview)
        worker.start()
        try:
            wait_until(lambda: worker.status()["ready"], 120, "the worker warming up")
            yield Shared(ledger, recorder, worker, config.output_dir)
        finally:
            worker.stop(timeout=30)


def test_is_a_dispatcher_that_reports_its_state(shared: Shared) -> None:
    assert isinstance(shared.worker, Dispatcher) and isinstance(shared.worker, ReportsStatus)
    status = shared.worker.status()
    assert status["kind"] == "process" and status["state"] == "idle"
    assert status["pid"] != os.getpid() and status["restarts"] == 0


def test_a_job_streams_the_same_events_as_in_process_and_makes_the_same_image(
    shared: Shared, ledger: Ledger, engine: Engine
) -> None:
    workflow = txt2img(steps=6)
    local_recorder = Recorder()
    local = LocalWorker(ledger, engine, local_recorder.publish, local_recorder.publish_preview)
    local.start()
    try:
        local_job = ledger.add(workflow)
        local.wake()
        local_end = local_recorder.ended(local_job.id, timeout=120)
    finally:
        local.stop(timeout=30)
    job = shared.ledger.add(workflow)
    shared.worker.wake()
    end = shared.recorder.ended(job.id, timeout=120)
    assert isinstance(end, JobFinished) and isinstance(local_end, JobFinished)

    def sequence(recorder: Recorder, job_id: str) -> list[tuple[str, str | None]]:
        return [(e.kind, getattr(e, "node", None)) for e in recorder.of(job_id)]  # type: ignore[attr-defined]

    assert sequence(shared.recorder, job.id) == sequence(local_recorder, local_job.id)
    assert [kind for kind, _ in sequence(shared.recorder, job.id)].count("node.progress") == 6
    record = shared.ledger.get(job.id)
    assert record is not None and record.status is JobStatus.SUCCEEDED
    assert record.outputs == end.outputs
    ours = shared.output_dir / end.outputs["save"]["images"][0]["filename"]
    theirs = engine.settings.output_dir / local_end.outputs["save"]["images"][0]["filename"]
    with Image.open(ours) as image, Image.open(theirs) as reference:
        assert image.tobytes() == reference.tobytes()  # same seed, same device: same pixels
    previews = [p for p in shared.recorder.previews if p.job == job.id]
    assert 1 <= len(previews) <= 6  # throttled in the worker
    assert all(p.node == "sampler" and p.latent.shape == (1, 4, 32, 32) for p in previews)


def test_a_cancel_reaches_the_job_running_in_the_child(shared: Shared) -> None:
    queue = JobQueue(shared.ledger, shared.worker, shared.recorder.publish)
    pid = shared.worker.status()["pid"]
    job = queue.submit(slow_count(1000, 0.03))[0]  # 30 s of work if nothing stopped it
    shared.recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == job.id, 60)
    cancelled_at = time.monotonic()
    assert queue.cancel(job.id) is not None
    wait_until(lambda: job.id not in shared.worker.running(), 15, "the child stopping the job")
    assert time.monotonic() - cancelled_at < 15
    assert shared.recorder.kinds(job.id)[-1] == "job.cancelled"
    assert shared.recorder.kinds(job.id).count("job.cancelled") == 1
    after = queue.submit(sum_of(2, 3))[0]
    end = shared.recorder.ended(after.id, timeout=60)
    assert isinstance(end, JobFinished) and end.outputs == {"out": {"values": [5]}}
    status = shared.worker.status()
    assert status["pid"] == pid and status["restarts"] == 0  # the same warm worker


def test_stop_hands_the_running_job_back_and_ends_the_child(ledger: Ledger, tmp_path: Path) -> None:
    recorder = Recorder()
    worker = WorkerProcess(
        ledger, worker_config(tmp_path), recorder.publish, recorder.publish_preview
    )
    worker.start()
    try:
        job = ledger.add(slow_count(1000, 0.03))
        worker.wake()
        recorder.wait_for(lambda e: isinstance(e, NodeProgress) and e.job == job.id, 120)
        pid = worker.status()["pid"]
    finally:
        worker.stop(timeout=30)
    record = ledger.get(job.id)
    assert record is not None and record.status is JobStatus.QUEUED and record.attempts == 0
    assert not {"job.finished", "job.failed", "job.cancelled"} & set(recorder.kinds(job.id))
    assert worker.status()["state"] == "stopped" and not worker.status()["ready"]
    assert process_gone(pid)


def test_a_worker_whose_engine_cannot_start_fails_each_job_with_the_reason(
    ledger: Ledger, tmp_path: Path
) -> None:
    missing = (tmp_path / "no-such-pack").resolve()
    recorder = Recorder()
    config = worker_config(tmp_path, node_packs=(missing,))
    worker = WorkerProcess(ledger, config, recorder.publish, recorder.publish_preview)
    worker.start()
    try:
        job = ledger.add(sum_of(1, 2))
        worker.wake()
        end = recorder.ended(job.id, timeout=120)
        status = worker.status()
    finally:
        worker.stop(timeout=30)
    assert isinstance(end, JobFailed)
    assert end.error == (
        "internal error: the engine could not start in the worker process: "
        f"RegistryError: node pack folder {missing} does not exist"
    )
    assert status["state"] == "failed" and status["restarts"] == 0 and not status["ready"]


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie no one has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# --- the real server ------------------------------------------------------------------------


class EventLog:
    """Every event the server's websocket sends (`/ws?jobs=all`), collected on a thread."""

    def __init__(self, base_url: str) -> None:
        self.url = f"ws://{base_url.removeprefix('http://')}/ws?jobs=all"
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    def __enter__(self) -> EventLog:
        self._thread.start()
        assert self._connected.wait(30), "the websocket did not connect"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        self._thread.join(10)

    async def _listen(self) -> None:
        async with websockets.connect(self.url) as websocket:
            assert json.loads(await websocket.recv())["type"] == "hello"
            self._connected.set()
            while not self._closing.is_set():
                try:
                    frame = await asyncio.wait_for(websocket.recv(), 0.2)
                except TimeoutError:
                    continue
                message = json.loads(frame) if isinstance(frame, str) else {}
                if message.get("type") == "event":
                    with self._changed:
                        self.events.append(message["event"])
                        self._changed.notify_all()

    def of(self, job: str) -> list[dict[str, Any]]:
        with self._changed:
            return [event for event in self.events if event.get("job") == job]

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            assert self._changed.wait_for(check, timeout), f"{what}; events: {self.events[-8:]}"

    def progress_in_attempt(self, job: str, attempt: int, timeout: float = 120) -> None:
        """Wait for a node.progress of `job` after its `attempt`-th job.started."""

        def seen() -> bool:
            kinds = [event["kind"] for event in self.of(job)]
            starts = [i for i, kind in enumerate(kinds) if kind == "job.started"]
            return len(starts) >= attempt and "node.progress" in kinds[starts[attempt - 1] :]

        self.wait(seen, timeout, f"no progress of {job} in attempt {attempt}")

    def end_of(self, job: str, timeout: float = 120) -> dict[str, Any]:
        terminal = {"job.finished", "job.failed", "job.cancelled"}
        self.wait(
            lambda: any(e["kind"] in terminal for e in self.of(job)), timeout, f"{job} never ended"
        )
        return next(e for e in self.of(job) if e["kind"] in terminal)


class SystemProbe:
    """Asks /api/system every 50 ms on a thread and keeps each answer's status and latency."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answers: list[tuple[int, float]] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def __enter__(self) -> SystemProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        self._thread.join(30)

    def _probe(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._closing.wait(0.05):
                began = time.perf_counter()
                try:
                    status = client.get(f"{self.base_url}/api/system").status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((status, time.perf_counter() - began))


def queue_job(base_url: str, workflow: dict[str, Any]) -> str:
    response = httpx.post(f"{base_url}/api/jobs", json={"workflow": workflow}, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["jobs"][0]["id"])


def worker_of(base_url: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/api/system", timeout=30).json()["worker"]  # type: ignore[no-any-return]


def allocation(node_type: str, gibibytes: int) -> dict[str, Any]:
    return document(
        {
            "alloc": {"type": node_type, "inputs": {"gibibytes": gibibytes}},
            "out": {
                "type": "arith.sink",
                "inputs": {"value": {"node": "alloc", "output": "value"}},
            },
        }
    )


def kill_twice(log: EventLog, base_url: str, job: str) -> list[int]:
    """SIGKILL the worker as `job` makes progress, in each of its two attempts."""
    killed = []
    for attempt in (1, 2):
        log.progress_in_attempt(job, attempt)
        pid = worker_of(base_url)["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    return killed


def test_the_server_outlives_workers_killed_mid_job_and_by_a_failed_allocation(
    models_dir: Path, tmp_path: Path
) -> None:
    with (
        running_server(
            models_dir,
            tmp_path / "data",
            node_packs=[ARITH_PACK, CRASH_PACK],
            worker_memory_limit_bytes=GIB,
            max_attempts=2,
        ) as base_url,
        EventLog(base_url) as log,
        SystemProbe(base_url) as probe,
    ):
        first_pid = wait_until(lambda: worker_of(base_url)["pid"], 120, "a worker starting")
        # SIGKILL mid-sampler: re-queued once, then failed with the cause.
        job = queue_job(base_url, txt2img(steps=500))
        killed = kill_twice(log, base_url, job)
        end = log.end_of(job)
        error = (
            'worker died: killed by signal 9 (SIGKILL) while running node "sampler" (KSampler), '
            "on attempt 2 of 2"
        )
        assert end == {"kind": "job.failed", "job": job, "error": error, "node": "sampler"}
        kinds = [event["kind"] for event in log.of(job)]
        assert kinds.count("job.started") == 2 and kinds.count("job.queued") == 2
        requeue = kinds.index("job.queued", 1)
        assert kinds[requeue - 1 : requeue + 2] == ["node.failed", "job.queued", "job.started"]
        record = httpx.get(f"{base_url}/api/jobs/{job}").json()
        assert (record["status"], record["attempts"], record["error"]) == ("failed", 2, error)

        # An allocation beyond the worker's limit that torch reports: the job fails, the worker lives.
        pid = wait_until(
            lambda: worker_of(base_url)["ready"] and worker_of(base_url)["pid"],
            120,
            "a fresh worker",
        )
        caught = log.end_of(queue_job(base_url, allocation("crash.allocate", 4)))
        assert caught["kind"] == "job.failed" and caught["node"] == "alloc"
        assert 'node "alloc" (Allocate, crash.allocate) failed: RuntimeError' in caught["error"]
        assert "can't allocate memory" in caught["error"]
        assert worker_of(base_url)["pid"] == pid

        # The same allocation unchecked, as native code might do it: SIGSEGV, twice.
        unchecked = queue_job(base_url, allocation("crash.allocate_unchecked", 4))
        assert log.end_of(unchecked)["error"] == (
            'worker died: killed by signal 11 (SIGSEGV) while running node "alloc" '
            "(Allocate Unchecked), on attempt 2 of 2"
        )

        # The next job runs on a fresh worker.
        after = log.end_of(queue_job(base_url, sum_of(20, 22)))
        assert after["kind"] == "job.finished" and after["outputs"] == {"out": {"values": [42]}}
        worker = worker_of(base_url)
        assert worker["ready"] and worker["restarts"] == 4
        assert worker["last_exit"] == "killed by signal 11 (SIGSEGV)"
        assert worker["pid"] not in {first_pid, *killed, pid}

        # Killed while idle, with a job queued at once: the job runs, its attempt uncounted.
        os.kill(worker["pid"], signal.SIGKILL)
        job = queue_job(base_url, sum_of(1, 1))
        assert log.end_of(job)["kind"] == "job.finished"
        assert httpx.get(f"{base_url}/api/jobs/{job}").json()["attempts"] == 1
        assert worker_of(base_url)["restarts"] == 5
    statuses = [status for status, _ in probe.answers]
    assert len(statuses) > 20 and set(statuses) == {200}  # answered throughout
    assert max(seconds for _, seconds in probe.answers) < 2.0


def test_a_worker_does_not_outlive_a_killed_server(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "latentloom.cli", "serve", "--port", str(port)]
    command += ["--models", str(models_dir), "--data", str(tmp_path / "data"), "--device", "cpu"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_ready(base_url)
        pid = wait_until(
            lambda: worker_of(base_url)["ready"] and worker_of(base_url)["pid"], 120, "the worker"
        )
        job = queue_job(base_url, txt2img(steps=1000))
        wait_until(
            lambda: httpx.get(f"{base_url}/api/jobs/{job}").json()["nodes"].get("sampler"),
            120,
            "the sampler starting",
        )
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        wait_until(lambda: process_gone(pid), 30, "the orphaned worker exiting")
    finally:
        server.kill()
        server.wait(timeout=30)
    assert not list((tmp_path / "data" / "output").glob("*.png"))


# --- a child spawned before the dispatcher (latentloom serve's early spawn) ------------------


def test_a_child_spawned_earlier_is_taken_over_not_doubled(ledger: Ledger, tmp_path: Path) -> None:
    from latentloom.jobs.worker_spawn import spawn_worker

    recorder = Recorder()
    config = worker_config(tmp_path)
    early = spawn_worker(config)
    worker = WorkerProcess(
        ledger, config, recorder.publish, recorder.publish_preview, first_worker=early
    )
    worker.start()
    try:
        job = ledger.add(sum_of(4, 5))
        worker.wake()
        end = recorder.ended(job.id, timeout=120)
        status = worker.status()
    finally:
        worker.stop(timeout=30)
    assert isinstance(end, JobFinished) and end.outputs == {"out": {"values": [9]}}
    assert status["pid"] == early.process.pid and status["restarts"] == 0
    assert status["started_at"] == early.started_at


def test_an_early_child_started_otherwise_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    from latentloom.jobs.worker_spawn import spawn_worker

    early = spawn_worker(worker_config(tmp_path))
    try:
        with pytest.raises(ValueError, match="another configuration"):
            WorkerProcess(
                ledger,
                worker_config(tmp_path, device="cpu", node_packs=()),
                Recorder().publish,
                Recorder().publish_preview,
                first_worker=early,
            )
    finally:
        early.end()


def test_stopped_before_it_took_the_early_child_over_ends_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    from latentloom.jobs.worker_spawn import spawn_worker

    config = worker_config(tmp_path)
    early = spawn_worker(config)
    recorder = Recorder()
    worker = WorkerProcess(
        ledger, config, recorder.publish, recorder.publish_preview, first_worker=early
    )
    worker.stop(timeout=30)  # never started
    assert process_gone(early.process.pid)
