"""Where the job engine's models are, as the worker reports it and `/api/system` shows it.

The worker's loop runs here in-process on a managed CPU engine (a device budget set: the real
residency path) and sends the residency with each job's outcome; the server's route, on this
unmanaged CPU machine, says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.jobs.worker_main import _Worker
from latentloom.jobs.worker_protocol import FromWorker, Outcome, RunJob
from latentloom.models.folders import ModelFolders
from latentloom.registry import build_registry
from tests.server.api_server import running_server
from tests.support import load_example


class Sent:
    """The worker's end of the pipe, keeping what it sends (the server's end is not tested)."""

    def __init__(self) -> None:
        self.messages: list[FromWorker] = []

    def send(self, message: FromWorker) -> None:
        self.messages.append(message)


def test_the_worker_sends_its_engines_residency_with_each_outcome(
    models_dir: Path, tmp_path: Path
) -> None:
    folders = Folders(ModelFolders.of([models_dir]), tmp_path)
    settings = RunSettings(
        torch.device("cpu"), torch.float32, folders, tmp_path, device_budget_bytes=2**30
    )
    engine = Engine(build_registry(entry_point_packs=False), settings, OutputCache(2**30))
    sent = Sent()
    worker = _Worker(cast(Any, sent), engine, previews_per_second=1.0)
    workflow = load_example("txt2img.json").with_input("sampler", "steps", 1)
    workflow = workflow.with_input("latent", "width", 64).with_input("latent", "height", 64)
    worker._run(RunJob("job-1", workflow.to_json()))
    outcome = sent.messages[-1]
    assert isinstance(outcome, Outcome) and outcome.status == "succeeded"
    memory = outcome.device_memory
    assert memory is not None and memory["managed"] is True
    assert memory["budget_bytes"] == 2**30 and memory["device"] == "cpu"
    assert {(m["name"], m["state"]) for m in memory["models"]} == {
        ("tiny-sd15.safetensors: unet", "resident"),
        ("tiny-sd15.safetensors: encoders[0]: model", "resident"),
        ("tiny-sd15.safetensors: module", "resident"),
    }
    assert memory["resident_bytes"] == sum(m["bytes"] for m in memory["models"])


def test_the_system_route_says_an_unmanaged_cpu_engine(models_dir: Path, tmp_path: Path) -> None:
    with running_server(models_dir, tmp_path / "data", worker="thread") as base_url:
        system = httpx.get(f"{base_url}/api/system", timeout=10).json()
    assert system["device_memory"] == {"managed": False}
