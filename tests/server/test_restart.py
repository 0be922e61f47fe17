"""A server killed with SIGKILL mid-job loses nothing: the running job is re-queued and every
queued job completes after the restart, each exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server.api_server import free_port, poll, wait_until_ready
from tests.support import load_example


def start_server(models_dir: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "latentloom.cli",
        "serve",
        "--port",
        str(port),
        "--models",
        str(models_dir),
        "--data",
        str(data_dir),
        "--device",
        "cpu",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_job_then_restart_completes_every_job_once(
    models_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(models_dir, tmp_path / "data", port)
    try:
        wait_until_ready(base)
        ids = []
        for steps, seed in [(150, 1), (2, 2), (2, 3)]:
            workflow = load_example("txt2img.json").with_input("sampler", "steps", steps)
            body = {"workflow": workflow.with_input("sampler", "seed", seed).to_json()}
            ids.append(
                httpx.post(f"{base}/api/jobs", json=body, timeout=60).json()["jobs"][0]["id"]
            )
        poll(f"{base}/api/jobs/{ids[0]}", lambda job: job["nodes"].get("sampler") == "started")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        server = start_server(models_dir, tmp_path / "data", port)
        wait_until_ready(base)
        for job_id in ids:
            poll(f"{base}/api/jobs/{job_id}", lambda job: job["status"] == "succeeded", timeout=240)
        jobs = httpx.get(f"{base}/api/jobs", params={"limit": 50}).json()
        assert jobs["total"] == 3  # nothing duplicated
        attempts = {job["id"]: job["attempts"] for job in jobs["jobs"]}
        assert attempts == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
        saved = sorted(p.name for p in (tmp_path / "data" / "output").glob("*.png"))
        assert len(saved) == 3  # the interrupted attempt saved nothing
    finally:
        server.kill()
        server.wait(timeout=30)
