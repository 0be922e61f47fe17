"""Hostile and over-budget job requests against a real uvicorn server: quick 422s, no 500s.

Each body gets its 422 with a message naming the bound, within a few seconds, and the
server keeps answering `/api/system` afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.api_server import running_server
from tests.support import load_example

HOSTILE_LIMIT_S = 5.0
GIB = 2**30


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("budget_api") / "data"
    with running_server(models_dir, data, memory_budget_bytes=12 * GIB) as base_url:
        yield base_url


def txt2img(**inputs: Any) -> dict[str, Any]:
    workflow = load_example("txt2img.json")
    for key, value in inputs.items():
        node, name = key.split("__")
        workflow = workflow.with_input(node, name, value)
    return workflow.to_json()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def post_raw(base_url: str, body: bytes) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.post(
        f"{base_url}/api/jobs",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    return response, time.perf_counter() - started


def body_with(workflow: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"workflow": workflow, **fields}).encode()  # writes NaN as Python does


HOSTILE = {
    "deep_meta": (
        body_with({**txt2img(), "meta": nested(300)}),
        "the request body: workflow.meta.a.a.a.a...: nested more than 64 levels deep; "
        "documents nest at most 64 levels",
    ),
    "nan_in_meta": (
        body_with({**txt2img(), "meta": {"x": float("nan")}}),
        "the request body: NaN is not a number JSON allows (no NaN or Infinity)",
    ),
    "infinite_input": (
        body_with(txt2img(sampler__cfg=float("inf"))),
        "the request body: Infinity is not a number JSON allows (no NaN or Infinity)",
    ),
    "infinite_runs": (
        body_with(txt2img(), runs=float("inf")),
        "the request body: Infinity is not a number JSON allows (no NaN or Infinity)",
    ),
    "overflowing_number": (
        b'{"workflow": {}, "priority": 1e999}',
        "the request body: 1e999 is too large for a number (it overflows to Infinity)",
    ),
    "bracket_bomb": (
        b"[" * 200_000 + b"]" * 200_000,
        "the request body: nested too deeply; documents nest at most 64 levels",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bodies_get_a_quick_422(server: str, case: str) -> None:
    body, detail = HOSTILE[case]
    response, seconds = post_raw(server, body)
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": detail}
    assert seconds < HOSTILE_LIMIT_S
    started = time.perf_counter()
    assert httpx.get(f"{server}/api/system", timeout=5).status_code == 200
    assert time.perf_counter() - started < 1.0


def test_an_over_budget_job_is_refused_naming_node_and_number(server: str) -> None:
    workflow = txt2img(latent__width=8192, latent__height=8192, latent__batch=64)
    response, seconds = post_raw(server, body_with(workflow))
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        {
            "node": "latent",
            "input": None,
            "code": "over_budget",
            "message": 'node "latent" (Empty Latent): 8192x8192x64 needs an estimated '
            '4106.0 GiB of memory at node "sampler" (KSampler); the budget is 12.0 GiB '
            "(memory_budget_bytes in the config file)",
        }
    ]
    assert seconds < HOSTILE_LIMIT_S


def test_a_near_zero_denoise_is_refused_with_the_schedule_length(server: str) -> None:
    response, seconds = post_raw(
        server, body_with(txt2img(sampler__steps=1000, sampler__denoise=1e-9))
    )
    assert response.status_code == 422, response.text
    assert [(p["code"], p["message"]) for p in response.json()["problems"]] == [
        (
            "over_limit",
            "node \"sampler\" (KSampler) input 'denoise': steps / denoise = 1000 / 1e-09 asks "
            "for a 999,999,999,999-step schedule; the most is 10,000: raise denoise to at "
            "least 0.1 or lower steps",
        )
    ]
    assert seconds < HOSTILE_LIMIT_S


def test_a_sound_job_still_queues_after_the_hostile_ones(server: str) -> None:
    response, _ = post_raw(server, body_with(txt2img()))
    assert response.status_code == 201, response.text
    assert httpx.get(f"{server}/api/system", timeout=5).status_code == 200
