"""Starting the server: the demo checkpoint, config files, bind safety, tokens, queue housekeeping."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from latentloom import cli
from latentloom.server.machine_addresses import machine_names
from latentloom.server.settings import load_settings
from tests.server.api_server import free_port, running_server
from tests.support import load_example


def test_with_no_models_the_server_offers_the_tiny_demo_checkpoint(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    with running_server(empty, tmp_path / "data") as base_url:
        system = httpx.get(f"{base_url}/api/system").json()
        assert system["demo_checkpoint"] == "tiny-sd15.safetensors"
        # The SDXL, refiner and SD 3 examples' checkpoints come with it.
        checkpoints = [
            "tiny-sd15.safetensors",
            "tiny-sd3.safetensors",
            "tiny-sdxl-refiner.safetensors",
            "tiny-sdxl.safetensors",
        ]
        assert httpx.get(f"{base_url}/api/models").json()["checkpoints"] == checkpoints
        nodes = {n["id"]: n for n in httpx.get(f"{base_url}/api/nodes").json()["nodes"]}
        loader = nodes["loaders.checkpoint"]["inputs"][0]
        assert loader["choices"] == checkpoints
        # What the clip_skip_vae, embedding and FLUX examples name comes with it.
        vaes = ["tiny-flux-ae.safetensors", "tiny-vae.safetensors"]
        assert nodes["loaders.vae"]["inputs"][0]["choices"] == vaes
        controlnets = nodes["loaders.controlnet"]["inputs"][0]["choices"]
        assert controlnets == ["tiny-controlnet-sd15.safetensors"]
        upscalers = nodes["loaders.upscale_model"]["inputs"][0]["choices"]
        assert upscalers == ["tiny-esrgan-x4.safetensors"]  # the upscale examples' model
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


# --- tokens at start-up -----------------------------------------------------------------------

GOOD_TOKEN = "a-long-enough-serve-token"


def test_a_short_token_refuses_to_start_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--token", "hunter2", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: token: the token is only 7 characters long; use at least 16 (a short token "
        "can be guessed), or pass --token auto to have one generated\n"
    )
    config = tmp_path / "latentloom.toml"
    config.write_text('token = "has spaces in it, sadly"\n')
    assert cli.main(["serve", "--config", str(config), "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: token: the token must be 16 to 512")
    assert not (tmp_path / "server-token").exists()


def test_the_token_is_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli._parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "9123", "--token", GOOD_TOKEN, "--data", "d"]
    )
    settings = cli._serve_settings(args)
    assert settings.token == GOOD_TOKEN
    printed = capsys.readouterr()
    assert GOOD_TOKEN not in printed.out + printed.err
    lines = printed.err.splitlines()
    assert lines[:2] == [
        "Latentloom: open http://127.0.0.1:9123/ (Ctrl+C stops the server)",
        "Latentloom: log in at /login with the token you configured (it is never printed)",
    ]
    assert lines[2].startswith("Latentloom: on the network: http://")
    assert f"http://{machine_names()[0]}:9123/" in lines[2]


def test_token_auto_starts_a_server_whose_token_is_only_in_a_private_file(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "latentloom.cli", "serve", "--token", "auto"]
    command += ["--port", str(port), "--data", str(data), "--models", str(tmp_path)]
    with log.open("w") as stderr:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        token_file = data / "server-token"
        deadline = time.monotonic() + 60
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}"
        answered = _first_answer(url + "/api/system", deadline, token)
        assert answered.status_code == 200
        assert httpx.get(url + "/api/system").status_code == 401
    finally:
        server.terminate()
        server.wait(30)
    printed = log.read_text()
    assert token not in printed
    assert (
        f"Latentloom: log in at /login with the token in {token_file} (it is never printed)"
        in printed
    )


def _first_answer(url: str, deadline: float, token: str) -> httpx.Response:
    while True:
        try:
            return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
