"""A third-party ComfyUI client from PyPI (comfy-api-simplified), used as its README shows,
against `latentloom serve` started as a user would start it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper
from PIL import Image

from tests.interop.comfy_server import TXT2IMG
from tests.server.api_server import free_port, wait_until_ready


@pytest.fixture
def served(models_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "latentloom.cli", "serve", "--port", str(port)]
    command += ["--models", str(models_dir), "--data", str(tmp_path / "data"), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, timeout=120)
        yield base_url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_comfy_api_simplified_queues_waits_and_downloads_the_image(
    served: str, tmp_path: Path
) -> None:
    saved = tmp_path / "workflow_api.json"
    saved.write_text(json.dumps(TXT2IMG))

    # As the client's README: wrap the server and an API-format workflow, set parameters by
    # node title, queue and wait for the images of the "Save Image" node.
    api = ComfyApiWrapper(f"{served}/")
    wf = ComfyWorkflowWrapper(str(saved))
    wf.set_node_param("Empty Latent Image", "width", 96)
    wf.set_node_param("Empty Latent Image", "batch_size", 1)
    wf.set_node_param("negative", "text", "blurry, low quality")
    results = api.queue_and_wait_images(wf, "Save Image")

    [(filename, data)] = results.items()
    assert filename.endswith(".png")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (96, 64)

    [job] = httpx.get(f"{served}/api/jobs", params={"status": "succeeded"}).json()["jobs"]
    assert job["outputs"]["9"]["images"][0]["filename"] == filename
    assert job["client_id"]  # the client's own uuid
    row = httpx.get(f"{served}/api/jobs/{job['id']}").json()
    assert row["workflow"]["nodes"]["5"]["inputs"]["width"] == 96
    assert row["workflow"]["nodes"]["7"]["inputs"]["text"] == "blurry, low quality"
    assert api.get_history(job["id"])[job["id"]]["status"]["status_str"] == "success"


def test_the_clients_other_calls_get_comfyuis_shapes(served: str, tmp_path: Path) -> None:
    api = ComfyApiWrapper(f"{served}/")
    assert api.get_queue() == {"queue_running": [], "queue_pending": []}
    assert api.get_object_info("KSampler")["KSampler"]["output"] == ["LATENT"]
    assert api.get_embeddings() == ["tiny-embedding", "tiny-embedding-sdxl"]
    assert api.get_system_stats()["devices"][0]["type"] == "cpu"
    picture = tmp_path / "input.png"
    Image.new("RGB", (16, 16), (10, 200, 10)).save(picture)
    uploaded = api.upload_image(picture)
    assert uploaded == {"name": "input.png", "subfolder": "default_upload_folder", "type": "input"}
    assert api.get_image("input.png", "default_upload_folder", "input") == picture.read_bytes()
    api.interrupt()  # nothing running: answered all the same
