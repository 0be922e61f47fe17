"""Run to here on a real server: `targets` on POST /api/jobs runs only what they need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.api_server import running_server
from tests.support import load_example


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(models_dir, tmp_path_factory.mktemp("targets") / "data") as base_url:
        yield base_url


def txt2img(seed: int) -> dict[str, Any]:
    return load_example("txt2img.json").with_input("sampler", "seed", seed).to_json()


def queue_and_wait(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/jobs?wait=true", json=body, timeout=120)
    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    return job  # type: ignore[no-any-return]


def test_targets_run_only_what_the_chosen_node_needs(server: str) -> None:
    job = queue_and_wait(server, {"workflow": txt2img(101), "targets": ["sampler"]})
    assert job["status"] == "succeeded"
    assert sorted(job["nodes"]) == ["checkpoint", "latent", "negative", "positive", "sampler"]
    assert set(job["nodes"].values()) == {"finished"}
    assert "save" not in job["outputs"]  # Save Image did not run: no image
    stored = httpx.get(f"{server}/api/jobs/{job['id']}").json()["workflow"]
    assert stored["meta"]["run_targets"] == ["sampler"]


def test_the_whole_graph_runs_after_a_partial_run_from_cache(server: str) -> None:
    queue_and_wait(server, {"workflow": txt2img(202), "targets": ["positive"]})
    job = queue_and_wait(server, {"workflow": txt2img(202)})
    assert job["nodes"]["positive"] == "cached"
    assert job["nodes"]["save"] == "finished"


def test_a_document_cannot_bring_its_own_targets(server: str) -> None:
    workflow = txt2img(303)
    workflow.setdefault("meta", {})["run_targets"] = ["positive"]
    job = queue_and_wait(server, {"workflow": workflow})
    assert job["nodes"]["save"] == "finished"
    stored = httpx.get(f"{server}/api/jobs/{job['id']}").json()["workflow"]
    assert "run_targets" not in stored["meta"]


def test_unknown_targets_are_refused_naming_them(server: str) -> None:
    response = httpx.post(
        f"{server}/api/jobs", json={"workflow": txt2img(1), "targets": ["sampler", "nope"]}
    )
    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem == {
        "node": None,
        "input": "targets",
        "code": "unknown_target",
        "message": "targets name nodes the workflow lacks: ['nope']; use ids from its nodes",
    }


def test_an_inner_node_of_a_subgraph_is_targeted_by_its_flattened_id(server: str) -> None:
    # The editor's Run to here inside an open subgraph sends "instance:inner".
    document = json.loads(
        (Path(__file__).parents[1] / "fixtures/subgraphs/txt2img_render.json").read_text()
    )
    job = queue_and_wait(server, {"workflow": document, "targets": ["render:sampler"]})
    assert job["status"] == "succeeded"
    assert sorted(job["nodes"]) == [
        "checkpoint",
        "negative",
        "positive",
        "render:latent",
        "render:sampler",
    ]
