"""POST /api/plan on a real server: which nodes a queue would run and which the cache serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.api_server import running_server
from tests.support import load_example

ALL = ["checkpoint", "positive", "negative", "latent", "sampler", "decode", "save"]


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(models_dir, tmp_path_factory.mktemp("plan") / "data") as base_url:
        yield base_url


def txt2img(seed: int, **modes: str) -> dict[str, Any]:
    document = load_example("txt2img.json").with_input("sampler", "seed", seed).to_json()
    for node, mode in modes.items():
        document["nodes"][node]["mode"] = mode
    return document


def plan(base_url: str, workflow: dict[str, Any], targets: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"workflow": workflow}
    if targets is not None:
        body["targets"] = targets
    response = httpx.post(f"{base_url}/api/plan", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def run(base_url: str, workflow: dict[str, Any]) -> None:
    response = httpx.post(
        f"{base_url}/api/jobs?wait=true", json={"workflow": workflow}, timeout=120
    )
    assert response.json()["jobs"][0]["status"] == "succeeded", response.text


def test_plan_follows_the_cache_and_what_a_change_costs(server: str) -> None:
    fresh = plan(server, txt2img(7))
    assert fresh == {"nodes": dict.fromkeys(ALL, "run"), "run": 7, "cached": 0}
    run(server, txt2img(7))
    assert plan(server, txt2img(7)) == {
        "nodes": dict.fromkeys(ALL, "cached"),
        "run": 0,
        "cached": 7,
    }
    reseeded = plan(server, txt2img(8))
    assert reseeded["nodes"] == {
        **dict.fromkeys(["checkpoint", "positive", "negative", "latent"], "cached"),
        **dict.fromkeys(["sampler", "decode", "save"], "run"),
    }
    assert (reseeded["run"], reseeded["cached"]) == (3, 4)


def test_a_job_run_before_the_first_plan_still_counts(models_dir: Path, tmp_path: Path) -> None:
    """The editor queues before its first plan request when the user is quick: what that job
    ran is still cached when the plan is first asked, however late."""
    with running_server(models_dir, tmp_path / "data") as fresh_server:
        run(fresh_server, txt2img(5))
        assert plan(fresh_server, txt2img(5))["cached"] == 7


def test_plan_to_a_target(server: str) -> None:
    to_sampler = plan(server, txt2img(9), targets=["sampler"])
    assert to_sampler["nodes"]["decode"] == "unneeded"
    assert to_sampler["nodes"]["save"] == "unneeded"
    assert to_sampler["nodes"]["sampler"] == "run"


def test_plan_refuses_what_a_queue_would_refuse(server: str) -> None:
    workflow = txt2img(1)
    workflow["nodes"]["sampler"]["inputs"]["steps"] = 0
    response = httpx.post(f"{server}/api/plan", json={"workflow": workflow})
    assert response.status_code == 422
    assert [p["node"] for p in response.json()["problems"]] == ["sampler"]
    unknown = httpx.post(f"{server}/api/plan", json={"workflow": txt2img(1), "targets": ["x"]})
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["code"] == "unknown_target"


class _Worker:
    """What KnownKeys reads of the services: the worker's status, as /api/system shows it."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def worker_status(self) -> dict[str, Any]:
        return self.status


def test_jobs_count_from_the_current_worker_process_start() -> None:
    from latentloom.server.routes_plan import KnownKeys

    known = KnownKeys()
    starting = _Worker({"restarts": 0, "pid": None, "started_at": None})
    before = time.time()
    assert known._epoch(starting) >= before  # type: ignore[arg-type]  # no job ran in it yet
    up = _Worker({"restarts": 0, "pid": 4242, "started_at": 1000.0})
    assert known._epoch(up) == 1000.0  # type: ignore[arg-type]  # however late the first ask
    again = _Worker({"restarts": 1, "pid": 4343, "started_at": 2000.0})
    assert known._epoch(again) == 2000.0  # type: ignore[arg-type]  # a new child: old cache gone


def test_a_pool_without_a_start_time_counts_from_the_server_start_until_a_restart() -> None:
    from latentloom.server.routes_plan import KnownKeys

    known = KnownKeys()
    pool = _Worker({"restarts": 0})
    start = known._epoch(pool)  # type: ignore[arg-type]
    assert start <= time.time()
    time.sleep(0.01)
    assert known._epoch(pool) == start  # type: ignore[arg-type]
    pool.status = {"restarts": 1}
    assert known._epoch(pool) > start  # type: ignore[arg-type]
