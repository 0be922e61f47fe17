"""The server's warm-up on a real uvicorn socket: `/api/system` answers while it runs, and a
job queued during it waits in the queue, then runs once it is done — it never fails.

The thread worker's warm-up is given a gate step ahead of the real engine-stack steps, so
"during the warm-up" lasts exactly as long as the test needs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from latentloom.graph.workflow import load_workflow_file
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.server.app import create_app
from latentloom.server.settings import ServerSettings
from latentloom.warmup import engine_stack_steps
from tests.server.live import listening_socket, serve

REPO = Path(__file__).resolve().parents[1]
SYSTEM_ANSWER_LIMIT_S = 1.0  # generous for a shared 2-core machine; a blocked loop takes seconds


def _system(client: httpx.Client) -> tuple[dict, float]:
    started = time.perf_counter()
    response = client.get("/api/system")
    assert response.status_code == 200
    return response.json(), time.perf_counter() - started


def test_system_answers_and_a_job_waits_for_the_warm_up(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    make_tiny_checkpoint("sd15", models / "checkpoints" / "tiny-sd15.safetensors", seed=0)
    gate = threading.Event()
    steps = [("gate", lambda: gate.wait(120)), *engine_stack_steps("cpu")]
    sock = listening_socket()
    settings = ServerSettings.model_validate(
        {
            "port": sock.getsockname()[1],
            "models": [models],
            "data": tmp_path / "data",
            "device": "cpu",
            "worker": "thread",
        }
    )
    workflow = load_workflow_file(REPO / "workflows" / "txt2img.json")
    for node, name, value in (("sampler", "steps", 1), ("latent", "width", 64)):
        workflow = workflow.with_input(node, name, value)
    try:
        with (
            serve(create_app(settings, warm_up_steps=steps), sock=sock) as base_url,
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            seconds = []
            deadline = time.monotonic() + 60
            while True:  # the engine (validation) comes up; the warm-up stays gated
                system, took = _system(client)
                seconds.append(took)
                if system["worker"] is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert system["engine"] == "ready"
            assert system["worker"]["warm_up"] == "running"
            assert system["worker"]["ready"] is False

            created = client.post("/api/jobs", json={"workflow": workflow.to_json()})
            assert created.status_code == 201, created.text
            job_id = created.json()["jobs"][0]["id"]
            for _ in range(5):  # queued, not failed, while the warm-up runs
                system, took = _system(client)
                seconds.append(took)
                job = client.get(f"/api/jobs/{job_id}").json()
                assert job["status"] == "queued", job
                time.sleep(0.1)
            assert max(seconds) < SYSTEM_ANSWER_LIMIT_S, seconds

            gate.set()
            deadline = time.monotonic() + 120
            while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
                time.sleep(0.1)
                job = client.get(f"/api/jobs/{job_id}").json()
            assert job["status"] == "succeeded", job
            system, _ = _system(client)
            assert system["worker"]["warm_up"] == "done" and system["worker"]["ready"]
    finally:
        gate.set()
