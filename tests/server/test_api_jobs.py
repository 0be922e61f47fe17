"""The job API against a real uvicorn server: events, previews, priorities, cancellation."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from latentloom.images import png_text, read_png_workflow
from tests.server.api_server import running_server
from tests.support import load_example

TERMINAL = {"job.finished", "job.failed", "job.cancelled"}


@pytest.fixture
def server(models_dir: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(models_dir, tmp_path / "data") as base_url:
        yield base_url


def txt2img(**inputs: Any) -> dict[str, Any]:
    workflow = load_example("txt2img.json")
    for key, value in inputs.items():
        node, name = key.split("__")
        workflow = workflow.with_input(node, name, value)
    return workflow.to_json()


def queue(base_url: str, workflow: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{base_url}/api/jobs", json={"workflow": workflow, **options}, timeout=120
    )
    assert response.status_code == 201, response.text
    return response.json()["jobs"]


async def collect(ws_url: str, jobs: int, frames: list[Any], ready: asyncio.Event) -> None:
    """Record frames (JSON dicts, or bytes for previews) until `jobs` jobs have ended."""
    async with websockets.connect(ws_url) as websocket:
        hello = json.loads(await websocket.recv())
        assert hello["type"] == "hello"
        ready.set()
        ended = 0
        while ended < jobs:
            frame = await asyncio.wait_for(websocket.recv(), 120)
            if isinstance(frame, bytes):
                frames.append(frame)
                continue
            message = json.loads(frame)
            frames.append(message)
            ended += message.get("event", {}).get("kind") in TERMINAL


def run_with_listener(base_url: str, action: Any, expected_jobs: int) -> list[Any]:
    """Open the websocket, then call `action()` (which queues jobs), and collect until they end."""

    async def main() -> list[Any]:
        frames: list[Any] = []
        ready = asyncio.Event()
        url = f"ws://127.0.0.1:{base_url.rsplit(':', 1)[1]}/ws?jobs=all"
        listener = asyncio.create_task(collect(url, expected_jobs, frames, ready))
        await ready.wait()
        assert len(await asyncio.to_thread(action)) == expected_jobs
        await asyncio.wait_for(listener, 300)
        return frames

    return asyncio.run(main())


def events_of(frames: list[Any], job: str | None = None) -> list[dict[str, Any]]:
    return [
        f["event"]
        for f in frames
        if isinstance(f, dict)
        and f.get("type") == "event"
        and (job is None or f["event"]["job"] == job)
    ]


def test_txt2img_streams_its_events_and_previews_and_its_png_carries_the_workflow(
    server: str,
) -> None:
    workflow = txt2img(sampler__steps=8, latent__width=512, latent__height=512)
    frames = run_with_listener(server, lambda: queue(server, workflow, client_id="someone-else"), 1)
    events = events_of(frames)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "job.queued" and kinds[1] == "job.started" and kinds[-1] == "job.finished"
    assert [e["step"] for e in events if e["kind"] == "node.progress"] == list(range(1, 9))
    started = [e["node"] for e in events if e["kind"] == "node.started"]
    assert started == ["checkpoint", "positive", "negative", "latent", "sampler", "decode", "save"]
    previews = [f for f in frames if isinstance(f, bytes)]
    assert previews, "no binary preview frame arrived"
    header_length = struct.unpack(">I", previews[0][:4])[0]
    header = json.loads(previews[0][4 : 4 + header_length])
    assert (
        header["node"] == "sampler" and previews[0][4 + header_length :][:2] == b"\xff\xd8"
    )  # JPEG
    saved = events[-1]["outputs"]["save"]["images"][0]
    png = httpx.get(f"{server}/api/outputs/{saved['filename']}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.headers["x-content-type-options"] == "nosniff"
    local = Path("/tmp") / f"latentloom-test-{saved['filename']}"
    local.write_bytes(png.content)
    assert read_png_workflow(local) == workflow
    assert list(png_text(local)) == ["prompt", "workflow", "latentloom"]  # ComfyUI's, then ours
    local.unlink()


def test_jobs_run_in_priority_order(server: str) -> None:
    def queue_all() -> list[dict[str, Any]]:
        blocker = queue(server, txt2img(sampler__steps=60, sampler__seed=1000))
        jobs = [
            queue(server, txt2img(sampler__steps=1, sampler__seed=seed), priority=seed % 4)[0]
            for seed in range(10)
        ]
        return blocker + jobs

    frames = run_with_listener(server, queue_all, 11)
    started = [e["job"] for e in events_of(frames) if e["kind"] == "job.started"]
    listed = httpx.get(f"{server}/api/jobs", params={"limit": 20}).json()["jobs"]
    priority = {job["id"]: job["priority"] for job in listed}
    created = {job["id"]: job["created_at"] for job in listed}
    after_blocker = started[1:]
    assert after_blocker == sorted(after_blocker, key=lambda job: (-priority[job], created[job]))


def test_cancel_a_queued_and_a_running_job_then_the_next_one_runs(server: str) -> None:
    async def main() -> list[Any]:
        frames: list[Any] = []
        ready = asyncio.Event()
        port = server.rsplit(":", 1)[1]
        listener = asyncio.create_task(collect(f"ws://127.0.0.1:{port}/ws", 3, frames, ready))
        await ready.wait()
        running, queued, last = [
            (
                await asyncio.to_thread(
                    queue, server, txt2img(sampler__steps=steps, sampler__seed=seed)
                )
            )[0]["id"]
            for steps, seed in [(400, 1), (4, 2), (3, 3)]
        ]
        while not any(
            e["kind"] == "node.progress" and e["job"] == running for e in events_of(frames)
        ):
            await asyncio.sleep(0.02)
        assert httpx.delete(f"{server}/api/jobs/{queued}").json()["status"] == "cancelled"
        assert httpx.delete(f"{server}/api/jobs/{running}").status_code == 200
        await asyncio.wait_for(listener, 120)
        return [running, queued, last, frames]

    running, queued, last, frames = asyncio.run(main())
    ended = {e["job"]: e["kind"] for e in events_of(frames) if e["kind"] in TERMINAL}
    assert ended == {running: "job.cancelled", queued: "job.cancelled", last: "job.finished"}
    steps = [e["step"] for e in events_of(frames, running) if e["kind"] == "node.progress"]
    assert max(steps) < 400
    assert httpx.get(f"{server}/api/jobs/{running}").json()["status"] == "cancelled"
    assert httpx.delete(f"{server}/api/jobs/{running}").status_code == 409


def test_invalid_workflow_gets_422_with_every_problem_and_nothing_is_queued(server: str) -> None:
    broken = json.loads(
        (Path(__file__).parents[1] / "fixtures" / "broken" / "many_problems.json").read_text()
    )
    response = httpx.post(f"{server}/api/jobs", json={"workflow": broken})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "the workflow is invalid: 4 problem(s)"
    assert {p["code"] for p in body["problems"]} == {
        "unknown_type",
        "unknown_input",
        "wrong_type",
        "invalid_choice",
    }
    assert httpx.get(f"{server}/api/jobs").json()["total"] == 0


def test_wait_true_returns_the_finished_job_and_runs_queue_several(server: str) -> None:
    response = httpx.post(
        f"{server}/api/jobs",
        params={"wait": "true"},
        json={"workflow": txt2img(sampler__steps=2), "runs": 3},
        timeout=120,
    )
    assert response.status_code == 201
    jobs = response.json()["jobs"]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    assert all(job["outputs"]["save"]["images"] for job in jobs)
    detail = httpx.get(f"{server}/api/jobs/{jobs[0]['id']}").json()
    assert detail["workflow"] == txt2img(sampler__steps=2)
    assert set(detail["nodes"].values()) <= {"finished", "cached"}


def test_a_reconnecting_client_resumes_after_its_last_event(server: str) -> None:
    httpx.post(
        f"{server}/api/jobs",
        params={"wait": "true"},
        json={"workflow": txt2img(sampler__steps=2)},
        timeout=120,
    )
    port = server.rsplit(":", 1)[1]

    async def replay(last: int) -> list[dict[str, Any]]:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws?last_event_id={last}"
        ) as websocket:
            hello = json.loads(await websocket.recv())
            frames = []
            for _ in range(hello["last_event_id"] - last):
                frames.append(json.loads(await asyncio.wait_for(websocket.recv(), 10)))
            return [hello, *frames]

    async def epoch_base() -> int:  # ids of this run count on from the epoch's base
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as websocket:
            return int(json.loads(await websocket.recv())["epoch_base"])

    base = asyncio.run(epoch_base())
    everything = asyncio.run(replay(base))
    assert everything[0]["complete"] is True
    ids = [frame["id"] for frame in everything[1:]]
    assert ids == list(range(base + 1, base + len(ids) + 1))
    resumed = asyncio.run(replay(ids[4]))
    assert [frame["id"] for frame in resumed[1:]] == ids[5:]


def test_queue_is_bounded(models_dir: Path, tmp_path: Path) -> None:
    with running_server(models_dir, tmp_path / "data", max_queue=2) as server:
        response = httpx.post(
            f"{server}/api/jobs", json={"workflow": txt2img(sampler__steps=300), "runs": 3}
        )
        assert response.status_code == 429
        assert (
            response.json()["detail"] == "the queue is full (2 jobs); try again when some have run"
        )
