"""Shared by the server benchmarks: `latentloom serve` as a subprocess on 127.0.0.1, workflows.

Every server is started with `--device cpu`, a fresh data folder and the tiny checkpoint's
model folder, logs to a file in the scratch folder (its tail is shown if it fails to start),
and is stopped with SIGINT (then SIGKILL) when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import WORKFLOWS
from latentloom.graph.workflow import Workflow, load_workflow_file

HOST = "127.0.0.1"
POLL_SECONDS = 0.005
STOP_TIMEOUT_S = 30.0
WAIT_TIMEOUT_S = 600.0  # a POST ?wait=true: the first job loads torch's kernels and the model


def latentloom_command() -> list[str]:
    """The `latentloom` console script of this environment (or `python -m latentloom.cli`)."""
    script = Path(sys.executable).with_name("latentloom")
    return [str(script)] if script.exists() else [sys.executable, "-m", "latentloom.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    started: float  # time.perf_counter() just before the process was spawned
    log: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/ws"

    def wait_answering(self, timeout: float = 60.0) -> float:
        """Seconds from spawn to the first 200 from GET /api/system."""
        return self._poll(lambda system: True, timeout)

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Seconds from spawn until /api/system reports the engine ready."""
        return self._poll(lambda system: system["engine"] == "ready", timeout)

    def _poll(self, done: Any, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited ({self.process.returncode}){self.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = client.get(f"{self.base_url}/api/system")
                    if response.status_code == 200:
                        system = response.json()
                        if system["engine"] == "failed":
                            raise RuntimeError(f"engine failed: {system['startup_error']}")
                        if done(system):
                            return time.perf_counter() - self.started
                time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{self.base_url} did not get there in {timeout} s{self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "; log tail:\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)


def thread_env(threads: int | None) -> dict[str, str] | None:
    """The environment for a subprocess whose torch uses `threads` CPU threads (None: default)."""
    if threads is None:
        return None
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def spawn_server(models: Path, data: Path, *, threads: int | None = None) -> Server:
    """Start `latentloom serve` and return at once (nothing waited for)."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}.log"
    command = [
        *latentloom_command(),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--models",
        str(models),
        "--data",
        str(data),
        "--device",
        "cpu",
    ]
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=thread_env(threads)
        )
    return Server(process, f"http://{HOST}:{port}", started, log)


@contextlib.contextmanager
def running_server(models: Path, data: Path, *, threads: int | None = None) -> Iterator[Server]:
    """A server whose engine is ready; stopped when the block ends."""
    server = spawn_server(models, data, threads=threads)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def txt2img(**inputs: Any) -> Workflow:
    """workflows/txt2img.json with `node__input=value` overrides, e.g. sampler__seed=3."""
    workflow = load_workflow_file(WORKFLOWS / "txt2img.json")
    for key, value in inputs.items():
        node, _, name = key.partition("__")
        workflow = workflow.with_input(node, name, value)
    return workflow


def cheap_workflow() -> Workflow:
    """A valid, nearly free job: 1 step at 64x64 (after its first run, every node is cached)."""
    return txt2img(sampler__steps=1, latent__width=64, latent__height=64)


def post_job(
    client: httpx.Client, base_url: str, workflow: Workflow, *, wait: bool = False, **body: Any
) -> dict[str, Any]:
    response = client.post(
        f"{base_url}/api/jobs",
        params={"wait": "true"} if wait else None,
        json={"workflow": workflow.to_json(), **body},
        timeout=WAIT_TIMEOUT_S if wait else client.timeout,
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/jobs: {response.status_code} {response.text[:500]}")
    return response.json()  # type: ignore[no-any-return]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
