"""POST /api/workflows/import and /api/workflows/export against a real uvicorn server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, PngImagePlugin

from tests.interop.comfy_server import TXT2IMG
from tests.server.api_server import running_server
from tests.support import load_example


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("data")
    with running_server(models_dir, data, max_upload_bytes=200_000) as base_url:
        yield base_url


def import_bytes(server: str, data: bytes, filename: str = "") -> httpx.Response:
    params = {"filename": filename} if filename else {}
    return httpx.post(f"{server}/api/workflows/import", content=data, params=params, timeout=60)


def png_with(chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_an_api_prompt_imports_with_comfyuis_ids_and_a_report(server: str) -> None:
    response = import_bytes(server, json.dumps(TXT2IMG).encode(), "workflow_api.json")
    assert response.status_code == 200, response.text
    body = response.json()
    workflow, report = body["workflow"], body["report"]
    assert workflow["schema"] == "latentloom/workflow" and workflow["version"] == 2
    assert workflow["nodes"]["3"]["type"] == "sampling.ksampler"
    assert workflow["nodes"]["3"]["inputs"]["model"] == {"node": "4", "output": "model"}
    assert report["format"] == "comfy-api" and report["unsupported"] == []
    assert {m["comfy_class"] for m in report["mapped"]} == {
        node["class_type"] for node in TXT2IMG.values()
    }


def test_a_png_carrying_a_prompt_imports_the_same_graph(server: str) -> None:
    from_json = import_bytes(server, json.dumps(TXT2IMG).encode()).json()["workflow"]
    response = import_bytes(server, png_with({"prompt": json.dumps(TXT2IMG)}), "ComfyUI_00001_.png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["workflow"]["nodes"] == from_json["nodes"]
    assert "prompt" in body["report"]["source"]


def test_an_unsupported_class_is_kept_as_a_placeholder_and_reported(server: str) -> None:
    prompt = json.loads(json.dumps(TXT2IMG))
    # A custom node's class: nothing in our table.
    prompt["10"] = {"class_type": "CustomImageFilter", "inputs": {"image": ["8", 0]}}
    body = import_bytes(server, json.dumps(prompt).encode()).json()
    assert body["workflow"]["nodes"]["10"]["type"] == "comfy:CustomImageFilter"
    [unsupported] = body["report"]["unsupported"]
    assert unsupported["node"] == "10" and unsupported["comfy_class"] == "CustomImageFilter"


def test_malformed_and_foreign_files_are_refused_naming_where(server: str) -> None:
    prompt = json.loads(json.dumps(TXT2IMG))
    prompt["3"]["inputs"]["model"] = ["42", 0]
    broken = import_bytes(server, json.dumps(prompt).encode())
    assert broken.status_code == 422
    assert '"42"' in broken.json()["detail"] and '"3"' in broken.json()["detail"]
    truncated = import_bytes(server, json.dumps(TXT2IMG).encode()[:-20], "x.json")
    assert truncated.status_code == 422 and "line 1 column" in truncated.json()["detail"]
    neither = import_bytes(server, b'{"hello": "world"}')
    assert neither.status_code == 422 and "neither" in neither.json()["detail"]
    plain_png = import_bytes(server, png_with({}), "photo.png")
    assert plain_png.status_code == 422, plain_png.text


def test_a_file_over_the_upload_limit_is_refused_before_it_is_read_whole(server: str) -> None:
    response = import_bytes(server, b" " * 300_000)
    assert response.status_code == 413
    assert "200,000" in response.json()["detail"]


def test_export_to_both_comfyui_formats_and_back(server: str) -> None:
    ours = load_example("txt2img.json").to_json()
    api = httpx.post(f"{server}/api/workflows/export", params={"format": "comfy-api"}, json=ours)
    assert api.status_code == 200, api.text
    prompt, report = api.json()["document"], api.json()["report"]
    assert report["format"] == "comfy-api" and report["unexportable"] == []
    assert {node["class_type"] for node in prompt.values()} >= {"KSampler", "SaveImage"}
    back = import_bytes(server, json.dumps(prompt).encode()).json()["workflow"]
    assert sorted(n["type"] for n in back["nodes"].values()) == sorted(
        n["type"] for n in ours["nodes"].values()
    )
    editor = httpx.post(
        f"{server}/api/workflows/export", params={"format": "comfy-editor"}, json=ours
    )
    assert editor.status_code == 200 and editor.json()["document"]["version"] == 0.4
    assert len(editor.json()["document"]["nodes"]) == len(ours["nodes"])

    wrong = httpx.post(f"{server}/api/workflows/export", params={"format": "a1111"}, json=ours)
    assert wrong.status_code == 422
    not_ours = httpx.post(
        f"{server}/api/workflows/export", params={"format": "comfy-api"}, json=TXT2IMG
    )
    assert not_ours.status_code == 422


def test_a_cross_origin_page_cannot_import(server: str) -> None:
    response = httpx.post(
        f"{server}/api/workflows/import",
        content=json.dumps(TXT2IMG).encode(),
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
