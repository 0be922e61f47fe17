"""Editor settings on the server, the models library listing and workflow versions, against
a real server on the tiny models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from latentloom.server.routes_settings import settings_problem
from tests.server.api_server import running_server
from tests.support import REPO


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(models_dir, tmp_path_factory.mktemp("library") / "data") as base_url:
        yield base_url


def test_settings_start_empty_and_persist_across_reads(server: str) -> None:
    assert httpx.get(f"{server}/api/settings").json() == {}
    settings = {"linkStyle": "orthogonal", "snapToGrid": True, "gridSize": 20, "badges": ["id"]}
    put = httpx.put(f"{server}/api/settings", json=settings)
    assert put.status_code == 200 and put.json() == settings
    assert httpx.get(f"{server}/api/settings").json() == settings


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ([1], "settings are a JSON object of name: value, got list"),
        (
            {"a": {"nested": 1}},
            "setting 'a': values are strings, numbers, booleans, null or lists of those, got dict",
        ),
        ({"a": list(range(51))}, "setting 'a': lists hold at most 50 values, got 51"),
        ({"": 1}, "a setting name is 1..100 characters, got 0"),
    ],
)
def test_settings_out_of_bounds_are_refused_naming_why(settings: object, problem: str) -> None:
    assert settings_problem(settings) == problem


def test_a_refused_put_is_a_422_and_keeps_what_was_stored(server: str) -> None:
    before = httpx.get(f"{server}/api/settings").json()
    response = httpx.put(f"{server}/api/settings", json={"a": {"nested": 1}})
    assert response.status_code == 422
    assert "values are strings, numbers" in response.json()["detail"]
    assert httpx.get(f"{server}/api/settings").json() == before


def test_the_models_library_names_folder_size_and_family(server: str, models_dir: Path) -> None:
    models = httpx.get(f"{server}/api/library/models", timeout=30).json()["models"]
    by_name = {(entry["folder"], entry["name"]): entry for entry in models}
    tiny = by_name[("checkpoints", "tiny-sd15.safetensors")]
    assert tiny["size"] == (models_dir / "checkpoints" / "tiny-sd15.safetensors").stat().st_size
    assert tiny["family"] == "sd15"
    assert by_name[("checkpoints", "tiny-sdxl.safetensors")]["family"] == "sdxl"
    assert all(entry["family"] is None for entry in models if entry["folder"] != "checkpoints")


def test_workflow_versions_list_newest_first_and_restore(server: str) -> None:
    document = json.loads((REPO / "workflows" / "txt2img.json").read_text())
    url = f"{server}/api/workflows/versions%20test"
    assert httpx.put(url, json=document).status_code == 200
    edited = json.loads(json.dumps(document))
    edited["nodes"]["sampler"]["inputs"]["steps"] = 3
    assert httpx.put(url, json=edited).status_code == 200
    versions = httpx.get(f"{url}/versions").json()["versions"]
    assert [entry["kind"] for entry in versions] == ["saved", "saved"]
    oldest = versions[-1]["version"]
    assert versions[0]["saved_at"] > versions[-1]["saved_at"]
    restored = httpx.post(f"{url}/versions/{oldest}/restore")
    assert restored.status_code == 200 and restored.json()["restored"] == oldest
    current = httpx.get(url).json()
    assert (
        current["nodes"]["sampler"]["inputs"]["steps"]
        == document["nodes"]["sampler"]["inputs"]["steps"]
    )
    missing = httpx.post(f"{url}/versions/nope.json/restore")
    assert missing.status_code == 404
    assert (
        missing.json()["detail"]
        == "workflow 'versions test' has no kept version 'nope.json' (it has 3)"
    )


def test_components_are_saved_listed_and_checked(server: str) -> None:
    render = json.loads(
        (REPO / "tests" / "fixtures" / "subgraphs" / "txt2img_render.json").read_text()
    )
    component = {"schema": "latentloom/component", "definition": render["subgraphs"]["render"]}
    saved = httpx.put(f"{server}/api/library/components/Render", json=component)
    assert saved.status_code == 200
    summary = {
        "name": "Render",
        "title": "Render",
        "description": None,
        "revision": 1,
        "inputs": ["model", "positive", "negative", "vae"],
        "outputs": ["image"],
        "nodes": 3,
    }
    assert saved.json() == summary
    assert httpx.get(f"{server}/api/library/components").json() == {"components": [summary]}
    assert httpx.get(f"{server}/api/library/components/Render").json() == component
    broken = json.loads(json.dumps(component))
    broken["definition"]["outputs"][0]["node"] = "gone"
    refused = httpx.put(f"{server}/api/library/components/Broken", json=broken)
    assert refused.status_code == 422
    assert "subgraphs.component.outputs.image: comes from node 'gone'" in refused.json()["detail"]
    odd = httpx.put(f"{server}/api/library/components/..x", json=component)
    assert odd.status_code == 422


def test_packs_name_the_pack_of_each_node_type(server: str) -> None:
    packs = httpx.get(f"{server}/api/library/packs").json()["packs"]
    assert packs["sampling.ksampler"].startswith("nodes/")
