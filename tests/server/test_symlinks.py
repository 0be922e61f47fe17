"""Planted and looping symlinks against the real server: writes stay inside the data folder,
broken links get 4xx answers, linked model libraries work, and start-up survives loops and
sweeps up what a crash left."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.api_server import running_server
from tests.support import WORKFLOWS

LONG_AGO = time.time() - 3600


@dataclass(frozen=True)
class Server:
    url: str
    data: Path
    outside: Path  # a folder outside the data folder that nothing may write into


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("symlinks")
    outside, library = root / "outside", root / "library"
    outside.mkdir()
    library.mkdir()
    shutil.copy(
        models_dir / "checkpoints" / "tiny-sd15.safetensors", library / "linked.safetensors"
    )
    models = root / "models"
    checkpoints = models / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "library").symlink_to(library, target_is_directory=True)
    (checkpoints / "a.safetensors").symlink_to(checkpoints / "b.safetensors")
    (checkpoints / "b.safetensors").symlink_to(checkpoints / "a.safetensors")
    (checkpoints / "up").symlink_to(models, target_is_directory=True)
    data = root / "data"
    for stale in (
        data / "workflows" / ".0f1e2d.tmp",
        data / "input" / ".upload-a1b2.partial",
        data / "output" / ".latentloom_00001.png.c0ffee123456.partial",
        data / "output" / "latentloom_00001.png",  # reserved, never written (empty)
    ):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"" if stale.suffix == ".png" else b"half")
        os.utime(stale, (LONG_AGO, LONG_AGO))
    shutil.copy(WORKFLOWS / "inputs" / "landscape.png", data / "input" / "landscape.png")
    with running_server(models, data, demo_checkpoint=False) as url:
        yield Server(url, data, outside)


def node(type_: str, **inputs: Any) -> dict[str, Any]:
    return {"type": type_, "inputs": inputs}


def document(**nodes: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "latentloom/workflow", "version": 2, "nodes": nodes}


def load_and(type_: str, **inputs: Any) -> dict[str, Any]:
    image = node("image.load", image="landscape.png")
    return document(
        image=image, out=node(type_, images={"node": "image", "output": "image"}, **inputs)
    )


def run(server: Server, workflow: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/jobs", params={"wait": "true"}, json={"workflow": workflow}, timeout=120
    )
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["jobs"][0]
    return job


def test_start_up_survives_model_folder_loops_and_lists_a_linked_library(server: Server) -> None:
    models = httpx.get(f"{server.url}/api/models", timeout=30).json()
    assert models["checkpoints"] == ["library/linked.safetensors"]


def test_start_up_swept_the_files_a_crash_left(server: Server) -> None:
    assert not (server.data / "workflows" / ".0f1e2d.tmp").exists()
    assert not (server.data / "input" / ".upload-a1b2.partial").exists()
    leftovers = [path.name for path in (server.data / "output").iterdir() if path.is_file()]
    assert "latentloom_00001.png" not in leftovers
    assert not [name for name in leftovers if name.endswith(".partial")]


def test_a_planted_previews_link_fails_the_job_and_writes_nothing_outside(server: Server) -> None:
    previews = server.data / "output" / "previews"
    shutil.rmtree(previews, ignore_errors=True)
    previews.symlink_to(server.outside, target_is_directory=True)
    try:
        job = run(server, load_and("image.preview"))
    finally:
        previews.unlink()
    assert job["status"] == "failed"
    assert (
        f"refused to write in {server.data.resolve() / 'output' / 'previews'}: it is a symlink "
        f"(to {server.outside}); files are written only into real folders"
    ) in job["error"]
    assert list(server.outside.iterdir()) == []


def test_a_planted_latents_link_is_refused_too(server: Server) -> None:
    latents = server.data / "output" / "latents"
    latents.symlink_to(server.outside, target_is_directory=True)
    workflow = document(
        empty=node("latent.empty", width=64, height=64, batch=1),
        save=node("latent.save", latent={"node": "empty", "output": "latent"}, filename_prefix="x"),
    )
    try:
        job = run(server, workflow)
    finally:
        latents.unlink()
    assert job["status"] == "failed" and "it is a symlink" in job["error"]
    assert list(server.outside.iterdir()) == []


def test_a_planted_link_under_the_next_output_name_is_skipped(server: Server) -> None:
    victim = server.outside / "victim.png"
    victim.write_bytes(b"keep me")
    link = server.data / "output" / "planted_00001.png"
    link.symlink_to(victim)
    job = run(server, load_and("image.save", filename_prefix="planted"))
    assert job["status"] == "succeeded", job.get("error")
    assert job["outputs"]["out"]["images"] == [{"filename": "planted_00002.png", "subfolder": ""}]
    assert victim.read_bytes() == b"keep me" and link.is_symlink()
    victim.unlink()


def test_dangling_and_looping_input_links_get_4xx(server: Server) -> None:
    inputs = server.data / "input"
    (inputs / "gone.png").symlink_to(inputs / "deleted.png")
    (inputs / "loop.png").symlink_to(inputs / "loop.png")
    (inputs / "out.png").symlink_to(WORKFLOWS / "inputs" / "landscape.png")
    catalog = httpx.get(f"{server.url}/api/nodes", timeout=30)
    assert catalog.status_code == 200
    load = next(spec for spec in catalog.json()["nodes"] if spec["id"] == "image.load")
    assert load["inputs"][0]["choices"] == ["landscape.png"]
    for name in ("gone.png", "loop.png", "out.png"):
        workflow = document(image=node("image.load", image=name))
        response = httpx.post(f"{server.url}/api/jobs", json={"workflow": workflow}, timeout=30)
        assert response.status_code == 422, response.text
        problem = response.json()["problems"][0]
        assert problem["node"] == "image" and problem["input"] == "image"
        assert problem["message"] == (
            f"node \"image\" (Load Image) input 'image': {name!r} was not found in the inputs "
            "folders; available: landscape.png"
        )
    outputs = server.data / "output"
    (outputs / "loop.png").symlink_to(outputs / "loop.png")
    assert httpx.get(f"{server.url}/api/outputs/loop.png").status_code == 404


def test_an_upload_never_writes_through_a_planted_link(server: Server) -> None:
    victim = server.outside / "photo.png"
    victim.write_bytes(b"keep me")
    (server.data / "input" / "photo.png").symlink_to(victim)
    png = (WORKFLOWS / "inputs" / "landscape.png").read_bytes()
    response = httpx.post(
        f"{server.url}/api/uploads", files={"file": ("photo.png", io.BytesIO(png))}, timeout=30
    )
    assert response.status_code == 201 and response.json() == {"name": "photo (1).png"}
    assert victim.read_bytes() == b"keep me"
    assert (server.data / "input" / "photo (1).png").read_bytes() == png


def test_a_planted_workflow_history_link_is_refused(server: Server) -> None:
    kept = server.outside / "precious.txt"
    kept.write_text("keep me")
    workflow = document(empty=node("latent.empty", width=64, height=64, batch=1))
    first = httpx.put(f"{server.url}/api/workflows/planted", json=workflow, timeout=30)
    assert first.status_code == 200, first.text
    history = server.data / "workflows" / ".history"
    history.mkdir(exist_ok=True)
    shutil.rmtree(history / "planted", ignore_errors=True)
    (history / "planted").symlink_to(server.outside, target_is_directory=True)
    second = httpx.put(f"{server.url}/api/workflows/planted", json=workflow, timeout=30)
    assert second.status_code == 422
    assert second.json()["detail"].startswith(
        f"refused '.history/planted': it is a symlink (to {server.outside})"
    )
    assert kept.read_text() == "keep me" and not list(server.outside.glob("*.json"))
