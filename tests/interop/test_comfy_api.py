"""ComfyUI's HTTP API and websocket against a real uvicorn server with the tiny checkpoint."""

from __future__ import annotations

import io
import struct
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.interop.comfy_server import (
    messages,
    post_like_comfyui_example,
    run_and_listen,
    txt2img,
)
from tests.server.api_server import running_server


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(models_dir, tmp_path_factory.mktemp("data")) as base_url:
        yield base_url


def test_a_prompt_posted_like_comfyuis_example_runs_as_an_ordinary_job(server: str) -> None:
    client_id, prompt_id = str(uuid.uuid4()), str(uuid.uuid4())
    body: dict[str, Any] = {
        "prompt": txt2img(),
        "client_id": client_id,
        "prompt_id": prompt_id,
        "extra_data": {"extra_pnginfo": {"workflow": {"nodes": [], "links": []}}},
    }
    answers: list[dict[str, Any]] = []
    frames = run_and_listen(
        server,
        client_id,
        lambda: answers.append(post_like_comfyui_example(server, body)),
        {prompt_id},
    )
    [answer] = answers
    assert answer["prompt_id"] == prompt_id and answer["node_errors"] == {}
    assert isinstance(answer["number"], int)

    first = frames[0]
    assert first["type"] == "status" and first["data"]["sid"] == client_id
    assert isinstance(first["data"]["status"]["exec_info"]["queue_remaining"], int)
    mine = messages(frames, prompt_id)
    kinds = [m["type"] for m in mine]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert kinds[-2:] == ["execution_success", "executing"] and mine[-1]["data"]["node"] is None
    executing = [m["data"]["node"] for m in mine if m["type"] == "executing"][:-1]
    assert executing == ["4", "6", "7", "5", "3", "8", "9"]
    progress = [m["data"] for m in mine if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [(1, 2, "3"), (2, 2, "3")]
    [executed] = [m["data"] for m in mine if m["type"] == "executed"]
    assert executed["node"] == "9" and executed["display_node"] == "9"
    [image] = executed["output"]["images"]
    assert image["type"] == "output" and image["filename"].endswith(".png")
    assert not [f for f in frames if isinstance(f, bytes)], "previews were not asked for"

    history = httpx.get(f"{server}/history/{prompt_id}").json()
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    number, item_id, prompt, extra_data, outputs = entry["prompt"]
    assert (number, item_id, outputs) == (answer["number"], prompt_id, ["9"])
    assert prompt == body["prompt"] and extra_data["client_id"] == client_id
    assert extra_data["extra_pnginfo"] == body["extra_data"]["extra_pnginfo"]
    assert entry["outputs"]["9"]["images"] == [image]

    view = httpx.get(f"{server}/view", params=image)
    assert view.status_code == 200 and view.headers["content-type"] == "image/png"
    assert view.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(view.content)) as png:
        assert png.format == "PNG" and png.size == (64, 64)

    job = httpx.get(f"{server}/api/jobs/{prompt_id}").json()
    assert job["status"] == "succeeded" and job["client_id"] == client_id
    assert job["workflow"]["nodes"]["3"]["type"] == "sampling.ksampler"
    listed = httpx.get(f"{server}/api/jobs", params={"status": "succeeded"}).json()["jobs"]
    assert prompt_id in [j["id"] for j in listed]


def test_an_invalid_prompt_gets_comfyuis_400_shape_naming_node_input_and_class(
    server: str,
) -> None:
    bad = txt2img(**{"4__ckpt_name": "missing.safetensors", "3__steps": 0})
    jobs_before = _job_count(server)
    response = httpx.post(f"{server}/prompt", json={"prompt": bad})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    loader = body["node_errors"]["4"]
    assert loader["class_type"] == "CheckpointLoaderSimple"
    assert loader["dependent_outputs"] == ["9"]
    [error] = loader["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"] == {"input_name": "ckpt_name"}
    assert "missing.safetensors" in error["message"] and "tiny-sd15.safetensors" in error["message"]
    [steps] = body["node_errors"]["3"]["errors"]
    assert steps["extra_info"]["input_name"] == "steps" and "0" in steps["message"]
    assert _job_count(server) == jobs_before, "an invalid prompt queued nothing"


def _job_count(server: str) -> int:
    return int(httpx.get(f"{server}/api/jobs").json()["total"])


def test_unsupported_classes_malformed_prompts_and_no_prompt_are_refused(server: str) -> None:
    prompt = txt2img()
    # A ComfyUI core class Latentloom has no node for.
    prompt["10"] = {"class_type": "ImageAddNoise", "inputs": {"strength": 0.5}}
    prompt["8"]["inputs"]["vae"] = ["10", 0]
    body = httpx.post(f"{server}/prompt", json={"prompt": prompt}).json()
    assert body["error"]["type"] == "missing_node_type"
    assert "ImageAddNoise" in body["error"]["message"]
    assert body["node_errors"]["10"]["class_type"] == "ImageAddNoise"

    malformed = txt2img()
    malformed["3"]["inputs"]["model"] = ["99", 0]
    response = httpx.post(f"{server}/prompt", json={"prompt": malformed})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_prompt"
    assert '"99"' in response.json()["error"]["message"]

    empty = httpx.post(f"{server}/prompt", json={"client_id": "x"})
    assert empty.status_code == 400 and empty.json()["error"]["type"] == "no_prompt"
    garbage = httpx.post(f"{server}/prompt", content=b"prompt=1")
    assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "invalid_prompt"
    bad_id = httpx.post(f"{server}/prompt", json={"prompt": txt2img(), "prompt_id": "../x"})
    assert bad_id.status_code == 400 and "prompt_id" in bad_id.json()["error"]["message"]


def test_queue_interrupt_and_history_follow_comfyuis_verbs(server: str) -> None:
    client_id = "queue-test"
    long_id, waiting_id = str(uuid.uuid4()), str(uuid.uuid4())

    def queue_both() -> None:
        for prompt_id, steps in ((long_id, 400), (waiting_id, 1)):
            body = {"prompt": txt2img(**{"3__steps": steps}), "client_id": client_id}
            answer = post_like_comfyui_example(server, {**body, "prompt_id": prompt_id})
            assert answer["prompt_id"] == prompt_id
        _wait_running(server, long_id)
        queue = httpx.get(f"{server}/queue").json()
        assert [item[1] for item in queue["queue_running"]] == [long_id]
        assert [item[1] for item in queue["queue_pending"]] == [waiting_id]
        assert httpx.get(f"{server}/prompt").json() == {"exec_info": {"queue_remaining": 2}}
        assert httpx.post(f"{server}/queue", json={"delete": [waiting_id]}).status_code == 200
        assert (
            httpx.post(f"{server}/interrupt", json={"prompt_id": "someone-else"}).status_code == 200
        )
        assert httpx.get(f"{server}/api/jobs/{long_id}").json()["status"] == "running"
        assert httpx.post(f"{server}/interrupt").status_code == 200

    frames = run_and_listen(server, client_id, queue_both, {long_id})
    mine = [m["type"] for m in messages(frames, long_id)]
    assert mine[0] == "execution_start" and mine[-2:] == ["execution_interrupted", "executing"]
    [interrupted] = [
        m["data"] for m in messages(frames, long_id) if m["type"] == "execution_interrupted"
    ]
    assert interrupted["node_id"] == "3" and interrupted["node_type"] == "KSampler"
    assert not messages(frames, waiting_id), "a deleted queued prompt never ran"
    assert httpx.get(f"{server}/api/jobs/{waiting_id}").json()["status"] == "cancelled"
    assert httpx.get(f"{server}/history/{waiting_id}").json() == {}  # it never ran
    assert waiting_id not in httpx.get(f"{server}/history").json()

    entry = httpx.get(f"{server}/history/{long_id}").json()[long_id]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    recent = httpx.get(f"{server}/history", params={"max_items": 1}).json()
    assert len(recent) == 1
    assert httpx.post(f"{server}/history", json={"delete": [long_id]}).status_code == 200
    assert httpx.get(f"{server}/history/{long_id}").json() == {}
    assert httpx.get(f"{server}/api/jobs/{long_id}").status_code == 404


def _wait_running(server: str, job_id: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while httpx.get(f"{server}/api/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, f"{job_id} never started"
        time.sleep(0.05)


def test_previews_are_comfyui_binary_frames_when_the_prompt_asks_for_them(server: str) -> None:
    client_id, prompt_id = "preview-test", str(uuid.uuid4())
    body = {
        "prompt": txt2img(**{"3__steps": 12, "5__width": 256, "5__height": 256}),
        "client_id": client_id,
        "prompt_id": prompt_id,
        "extra_data": {"preview_method": "auto"},
    }
    frames = run_and_listen(
        server, client_id, lambda: post_like_comfyui_example(server, body), {prompt_id}
    )
    previews = [f for f in frames if isinstance(f, bytes)]
    assert previews, "no binary preview frame arrived"
    assert struct.unpack(">II", previews[0][:8]) == (1, 1)
    with Image.open(io.BytesIO(previews[0][8:])) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (32, 32)  # the latent, 256/8


def test_another_clients_prompt_shows_only_as_status(server: str) -> None:
    prompt_id = str(uuid.uuid4())
    body = {"prompt": txt2img(), "client_id": "someone-else", "prompt_id": prompt_id}

    def queue_and_wait() -> None:
        post_like_comfyui_example(server, body)
        import time

        deadline = time.monotonic() + 60
        while httpx.get(f"{server}/api/jobs/{prompt_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # A prompt of our own, so the listener has an end to wait for.
        own = {"prompt": txt2img(), "client_id": "watcher", "prompt_id": "watcher-end"}
        post_like_comfyui_example(server, own)

    frames = run_and_listen(server, "watcher", queue_and_wait, {"watcher-end"})
    assert not messages(frames, prompt_id), "progress of another client's prompt leaked"
    statuses = [m for m in messages(frames) if m["type"] == "status"]
    assert len(statuses) >= 4  # its queued, started and finished, at least


def test_object_info_describes_the_supported_classes_in_comfyuis_shape(server: str) -> None:
    info = httpx.get(f"{server}/object_info").json()
    assert {"CheckpointLoaderSimple", "KSampler", "SaveImage", "LatentBlend"} <= set(info)
    sampler = info["KSampler"]
    assert sampler["input"]["required"]["seed"][0] == "INT"
    assert sampler["input"]["required"]["seed"][1]["control_after_generate"] is True
    assert sampler["input"]["required"]["model"] == ["MODEL", {}]
    assert "euler" in sampler["input"]["required"]["sampler_name"][0]
    assert sampler["input_order"]["required"][:4] == [
        "model",
        "positive",
        "negative",
        "latent_image",
    ]
    assert sampler["output"] == ["LATENT"] and sampler["output_is_list"] == [False]
    loader = httpx.get(f"{server}/object_info/CheckpointLoaderSimple").json()
    [choices, _] = loader["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    assert "tiny-sd15.safetensors" in choices
    assert loader["CheckpointLoaderSimple"]["output"] == ["MODEL", "CLIP", "VAE"]
    assert info["LoadImage"]["input"]["required"]["image"][1]["image_upload"] is True
    assert info["LoadImage"]["output"] == ["IMAGE", "MASK"]
    assert info["SaveImage"]["output_node"] is True
    assert "weighting" not in info["CLIPTextEncode"]["input"]["required"]
    assert info["CLIPTextEncode"]["input"]["required"]["text"][1]["multiline"] is True
    assert httpx.get(f"{server}/object_info/NoSuchClass").json() == {}


def test_system_stats_embeddings_and_model_folders(server: str, models_dir: Path) -> None:
    stats = httpx.get(f"{server}/system_stats").json()
    assert stats["devices"][0]["type"] == "cpu" and stats["system"]["ram_total"] > 0
    # ComfyUI lists embeddings by name without the extension (the demo folder holds two).
    assert httpx.get(f"{server}/embeddings").json() == ["tiny-embedding", "tiny-embedding-sdxl"]
    assert "checkpoints" in httpx.get(f"{server}/models").json()
    assert "tiny-sd15.safetensors" in httpx.get(f"{server}/models/checkpoints").json()
    assert httpx.get(f"{server}/models/loras").json() == ["tiny-lora-sd15.safetensors"]
    assert httpx.get(f"{server}/models/nope").status_code == 404


def test_api_prefixed_aliases_answer_but_our_own_api_routes_stay_ours(server: str) -> None:
    assert httpx.get(f"{server}/api/object_info/KSampler").json().keys() == {"KSampler"}
    assert "exec_info" in httpx.get(f"{server}/api/prompt").json()
    ours = httpx.get(f"{server}/api/models").json()
    assert isinstance(ours, dict) and "checkpoints" in ours
    assert httpx.get(f"{server}/api/models/checkpoints").json() == ours["checkpoints"]


def test_uploads_and_view_keep_files_confined(server: str) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(picture, format="PNG")
    data = picture.getvalue()
    files = {"image": ("red.png", data, "image/png")}
    first = httpx.post(f"{server}/upload/image", files=files, data={"subfolder": "clips"})
    assert first.status_code == 200
    assert first.json() == {"name": "red.png", "subfolder": "clips", "type": "input"}
    same = httpx.post(f"{server}/upload/image", files=files, data={"subfolder": "clips"})
    assert same.json()["name"] == "red.png"  # identical bytes: the name is reused
    other = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 0, 255)).save(other, format="PNG")
    renamed = httpx.post(
        f"{server}/upload/image",
        files={"image": ("red.png", other.getvalue(), "image/png")},
        data={"subfolder": "clips"},
    )
    assert renamed.json()["name"] == "red (1).png"
    overwritten = httpx.post(
        f"{server}/upload/image",
        files={"image": ("red.png", other.getvalue(), "image/png")},
        data={"subfolder": "clips", "overwrite": "true"},
    )
    assert overwritten.json()["name"] == "red.png"
    view = httpx.get(
        f"{server}/view", params={"filename": "red.png", "subfolder": "clips", "type": "input"}
    )
    assert view.status_code == 200 and view.content == other.getvalue()

    mask = io.BytesIO()
    Image.new("RGBA", (20, 10), (0, 0, 0, 77)).save(mask, format="PNG")
    masked = httpx.post(
        f"{server}/upload/mask",
        files={"image": ("red-mask.png", mask.getvalue(), "image/png")},
        data={"original_ref": '{"filename": "red.png", "subfolder": "clips", "type": "input"}'},
    )
    assert masked.status_code == 200, masked.text
    stored = httpx.get(
        f"{server}/view", params={**masked.json(), "filename": masked.json()["name"]}
    )
    with Image.open(io.BytesIO(stored.content)) as result:
        assert result.mode == "RGBA" and result.getpixel((3, 3)) == (0, 0, 255, 77)

    for params in (
        {"filename": "../ledger.sqlite3", "type": "output"},
        {"filename": "red.png", "subfolder": "../input", "type": "output"},
        {"filename": "red.png", "subfolder": "/etc", "type": "input"},
        {"filename": "red.png", "type": "nowhere"},
    ):
        assert httpx.get(f"{server}/view", params=params).status_code == 400, params
    assert httpx.get(f"{server}/view", params={"filename": "absent.png"}).status_code == 404
    escape = httpx.post(f"{server}/upload/image", files=files, data={"subfolder": "../../x"})
    assert escape.status_code == 400
    fake = httpx.post(f"{server}/upload/image", files={"image": ("x.png", b"<svg/>", "image/png")})
    assert fake.status_code == 415


def test_cross_site_callers_are_refused_on_prompt_and_websocket(server: str) -> None:
    evil = {"Origin": "http://evil.example"}
    response = httpx.post(f"{server}/prompt", json={"prompt": txt2img()}, headers=evil)
    assert response.status_code == 403 and "evil.example" in response.json()["detail"]
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    assert httpx.post(f"{server}/prompt", content=b"{}", headers=cross_site).status_code == 403
    import asyncio

    import websockets

    async def connect(headers: dict[str, str]) -> int:
        url = f"ws://{server.removeprefix('http://')}/ws?clientId=x"
        try:
            async with websockets.connect(url, additional_headers=headers):
                return 101
        except websockets.InvalidStatus as refused:
            return int(refused.response.status_code)

    assert asyncio.run(connect(evil)) == 403
    assert asyncio.run(connect({"Origin": "null"})) == 403


def test_prompt_errors_reach_the_client_as_urllib_sees_them(server: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_like_comfyui_example(server, {"prompt": txt2img(**{"3__sampler_name": "nope"})})
    assert refused.value.code == 400
    assert b"value_not_in_list" in refused.value.read()
    refused.value.close()


def test_front_and_number_place_prompts_as_comfyui_orders_them(server: str) -> None:
    blocker = post_like_comfyui_example(server, {"prompt": txt2img(**{"3__steps": 400})})
    _wait_running(server, blocker["prompt_id"])
    back = post_like_comfyui_example(server, {"prompt": txt2img(**{"3__seed": 1})})
    front = post_like_comfyui_example(server, {"prompt": txt2img(**{"3__seed": 2}), "front": True})
    numbered = post_like_comfyui_example(
        server, {"prompt": txt2img(**{"3__seed": 3}), "number": front["number"] - 4.5}
    )
    assert numbered["number"] == front["number"] - 5 < front["number"] < back["number"]
    taken = post_like_comfyui_example(
        server, {"prompt": txt2img(**{"3__seed": 4}), "number": numbered["number"]}
    )
    assert taken["number"] == numbered["number"] + 1  # the first free place from it up
    pending = [item[1] for item in httpx.get(f"{server}/queue").json()["queue_pending"]]
    ids = [p["prompt_id"] for p in (numbered, taken, front, back)]
    assert pending == ids
    assert httpx.post(f"{server}/queue", json={"clear": True}).status_code == 200
    assert httpx.get(f"{server}/queue").json()["queue_pending"] == []
    httpx.post(f"{server}/interrupt")
    statuses = {job: httpx.get(f"{server}/api/jobs/{job}").json()["status"] for job in ids}
    assert set(statuses.values()) == {"cancelled"}


def test_partial_execution_targets_run_only_the_named_outputs(server: str) -> None:
    prompt = txt2img()
    prompt["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    prompt_id = str(uuid.uuid4())
    body = {"prompt": prompt, "prompt_id": prompt_id, "partial_execution_targets": ["10"]}
    frames = run_and_listen(
        server,
        "partial",
        lambda: post_like_comfyui_example(server, {**body, "client_id": "partial"}),
        {prompt_id},
    )
    executed = [m["data"]["node"] for m in messages(frames, prompt_id) if m["type"] == "executed"]
    assert executed == ["10"]
    entry = httpx.get(f"{server}/history/{prompt_id}").json()[prompt_id]
    assert list(entry["outputs"]) == ["10"] and entry["prompt"][4] == ["10"]
    [preview] = entry["outputs"]["10"]["images"]
    assert preview["type"] == "temp" and preview["subfolder"] == ""
    view = httpx.get(f"{server}/view", params=preview)
    assert view.status_code == 200 and view.content.startswith(b"\x89PNG")
    unknown = httpx.post(f"{server}/prompt", json={**body, "partial_execution_targets": ["77"]})
    assert unknown.status_code == 400 and "77" in unknown.json()["error"]["message"]
