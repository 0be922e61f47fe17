"""Starting the server: the demo checkpoint, config files, bind safety, queue housekeeping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from latentloom.server.settings import load_settings
from tests.server.api_server import running_server
from tests.support import load_example


def test_with_no_models_the_server_offers_the_tiny_demo_checkpoint(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    with running_server(empty, tmp_path / "data") as base_url:
        system = httpx.get(f"{base_url}/api/system").json()
        assert system["demo_checkpoint"] == "tiny-sd15.safetensors"
        assert httpx.get(f"{base_url}/api/models").json()["checkpoints"] == [
            "tiny-sd15.safetensors"
        ]
        nodes = {n["id"]: n for n in httpx.get(f"{base_url}/api/nodes").json()["nodes"]}
        loader = nodes["loaders.checkpoint"]["inputs"][0]
        assert loader["choices"] == ["tiny-sd15.safetensors"]
        workflow = load_example("txt2img.json").with_input("sampler", "steps", 2).to_json()
        done = httpx.post(
            f"{base_url}/api/jobs",
            params={"wait": "true"},
            json={"workflow": workflow},
            timeout=120,
        )
        assert done.json()["jobs"][0]["status"] == "succeeded"


def test_config_file_sets_what_flags_override(tmp_path: Path) -> None:
    config = tmp_path / "latentloom.toml"
    config.write_text('port = 9000\nmodels = ["/srv/models", "/srv/more"]\nmax_queue = 5\n')
    settings = load_settings(config, {"port": 9100, "models": []})
    assert settings.port == 9100
    assert settings.models == [Path("/srv/models"), Path("/srv/more")]
    assert settings.max_queue == 5


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "latentloom.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "without --token" in done.stderr


def test_clear_the_queue_and_prune_the_history(models_dir: Path, tmp_path: Path) -> None:
    with running_server(models_dir, tmp_path / "data") as base_url:
        quick = load_example("txt2img.json").with_input("sampler", "steps", 1).to_json()
        httpx.post(
            f"{base_url}/api/jobs",
            params={"wait": "true"},
            json={"workflow": quick, "runs": 2},
            timeout=120,
        )
        slow = load_example("txt2img.json").with_input("sampler", "steps", 400).to_json()
        jobs = httpx.post(f"{base_url}/api/jobs", json={"workflow": slow, "runs": 3}).json()["jobs"]
        cleared = httpx.post(f"{base_url}/api/queue/clear").json()["cancelled"]
        assert cleared >= 2  # the first may already be running
        httpx.delete(f"{base_url}/api/jobs/{jobs[0]['id']}")
        assert httpx.get(f"{base_url}/api/jobs", params={"status": "queued"}).json()["total"] == 0
        assert httpx.post(f"{base_url}/api/history/prune", json={"keep": 1}).json()["removed"] == 4
        assert httpx.get(f"{base_url}/api/jobs").json()["total"] == 1
