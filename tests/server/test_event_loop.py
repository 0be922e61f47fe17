"""Nothing blocks the event loop, against a real server process: `/api/system` keeps answering
while eight clients post ~9 MB workflows and a websocket client reads nothing.

The flooding clients run in a child process of their own, so that their GIL is not the one
the measurement waits on. The issue asks for 100 ms; on a shared two-core test machine a
bound that tight would make the test flaky, so it asserts 1 s per request and
`bench/server_event_loop.py` reports p99 against an idle server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.api_server import free_port, wait_until_ready
from tests.server.test_client_memory import StalledClient
from tests.server.test_restart import start_server
from tests.support import load_example

FLOODERS = 8
FLOOD_SECONDS = 6.0
LIMIT_S = 1.0
# Posts one body from a file in a loop on N threads for S seconds; prints the status codes.
FLOOD = """
import json, sys, threading, time, httpx
url, path, threads, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
body, statuses, end = open(path, "rb").read(), [], time.monotonic() + seconds
def flood():
    with httpx.Client(timeout=120) as client:
        while time.monotonic() < end:
            headers = {"content-type": "application/json"}
            statuses.append(client.post(url, content=body, headers=headers).status_code)
workers = [threading.Thread(target=flood) for _ in range(threads)]
[worker.start() for worker in workers]
[worker.join() for worker in workers]
print(json.dumps(statuses))
"""


def start_flood(url: str, body_file: Path, threads: int, seconds: float) -> subprocess.Popen[str]:
    """Clients posting `body_file` to `url`, in a child process; its stdout is the statuses."""
    command = [sys.executable, "-c", FLOOD, url, str(body_file), str(threads), str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def big_workflow_body(megabytes: int = 9) -> bytes:
    """A valid txt2img job whose meta carries `megabytes` of notes (strings stay in bounds)."""
    workflow = load_example("txt2img.json").with_input("sampler", "steps", 1).to_json()
    workflow["meta"] = {"notes": ["n" * 99_000 for _ in range(megabytes * 10)]}
    return json.dumps({"workflow": workflow}).encode()


@pytest.fixture
def server(models_dir: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = start_server(models_dir, tmp_path / "data", port)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", port
    finally:
        process.kill()
        process.wait(timeout=30)


def test_the_system_route_answers_while_big_workflows_flood_in(
    server: tuple[str, int], tmp_path: Path
) -> None:
    base, port = server
    body_file = tmp_path / "body.json"
    body_file.write_bytes(big_workflow_body())
    stalled = StalledClient(f"ws://127.0.0.1:{port}/ws?jobs=all")
    flood = start_flood(f"{base}/api/jobs", body_file, FLOODERS, FLOOD_SECONDS)
    latencies = []
    try:
        with httpx.Client(timeout=30) as client:
            while flood.poll() is None:
                start = time.perf_counter()
                assert client.get(f"{base}/api/system").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.02)
        output, _ = flood.communicate(timeout=120)
    finally:
        flood.kill()
        stalled.sock.close()
    statuses = json.loads(output)
    latencies.sort()
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    assert statuses and set(statuses) <= {201, 429}, sorted(set(statuses))
    assert latencies[-1] < LIMIT_S, f"slowest {latencies[-1]:.3f} s, p99 {p99:.3f} s"
    jobs = httpx.get(f"{base}/api/jobs", params={"limit": 5}).json()
    assert jobs["total"] >= statuses.count(201) > 0
    # Every run of the one workflow shares one stored document.
    assert {job["workflow_hash"] for job in jobs["jobs"]} == {jobs["jobs"][0]["workflow_hash"]}
