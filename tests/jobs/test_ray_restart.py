"""A server dispatching to Ray, killed with SIGKILL while a worker actor runs a job, loses
nothing: started again on the same data folder it re-queues the interrupted job (attempt
counted), and every job completes once, with exactly one output each.

The server is a real `latentloom serve --ray ADDRESS --ray-workers 1` process joining the
session's local Ray instance (starting one per server would cost seconds each). Ray ends the
killed server's actor itself (an actor shares its owner's fate), so the interrupted attempt
can never deliver its output to anyone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.api_server import free_port, poll, wait_until_ready
from tests.support import load_example


def start_server(
    models_dir: Path, data_dir: Path, port: int, ray_address: str
) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "latentloom.cli", "serve", "--port", str(port)),
        *("--models", str(models_dir), "--data", str(data_dir), "--device", "cpu"),
        *("--ray", ray_address, "--ray-workers", "1"),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def submit(base: str, steps: int, seed: int) -> str:
    workflow = load_example("txt2img.json").with_input("sampler", "steps", steps)
    body = {"workflow": workflow.with_input("sampler", "seed", seed).to_json()}
    response = httpx.post(f"{base}/api/jobs", json=body, timeout=60)
    return str(response.json()["jobs"][0]["id"])


@pytest.mark.slow  # about a minute here: two server starts, each warming a Ray actor
def test_sigkill_with_a_job_on_a_ray_worker_then_restart_completes_every_job_once(
    ray_instance: str, models_dir: Path, tmp_path: Path
) -> None:
    port, data = free_port(), tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    server = start_server(models_dir, data, port, ray_instance)
    try:
        wait_until_ready(base, timeout=120)
        # Only the first job is long: it must still be running on the actor when the kill lands.
        ids = [submit(base, steps, seed) for steps, seed in [(300, 1), (2, 2), (2, 3)]]
        poll(f"{base}/api/jobs/{ids[0]}", lambda job: job["nodes"].get("sampler") == "started", 180)
        system = httpx.get(f"{base}/api/system", timeout=10).json()
        assert system["worker"]["kind"] == "ray"
        assert [w["job"] for w in system["worker"]["workers"]] == [ids[0]]
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)

        server = start_server(models_dir, data, port, ray_instance)
        wait_until_ready(base, timeout=120)
        for job_id in ids:
            poll(f"{base}/api/jobs/{job_id}", lambda job: job["status"] == "succeeded", 300)
        jobs = httpx.get(f"{base}/api/jobs", params={"limit": 50}, timeout=10).json()
        assert jobs["total"] == 3  # nothing duplicated
        attempts = {job["id"]: job["attempts"] for job in jobs["jobs"]}
        assert attempts == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
        for job_id in ids:
            record = httpx.get(f"{base}/api/jobs/{job_id}", timeout=10).json()
            images = [i for report in record["outputs"].values() for i in report.get("images", [])]
            assert len(images) == 1, record["outputs"]
        saved = sorted(p.name for p in (data / "output").glob("*.png"))
        assert len(saved) == 3  # the interrupted attempt wrote nothing
    finally:
        server.kill()
        server.wait(timeout=30)
