"""Residency in the engine: models on and off the device between nodes, on the real path.

On the CPU the engine manages nothing unless it is given a `device_budget_bytes`; with one,
"the device" is a second copy of the weights (as in the manager's own tests), so the real
executor -> manager path runs here: two checkpoints used alternately within a budget that
holds one, and a UNet bigger than the budget streamed block by block, each bit-identical to
the unmanaged engine. The same run on CUDA is skipped without a GPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import CancelToken, NodeContext, RunSettings
from latentloom.engine.events import NodeFinished
from latentloom.engine.executor import Engine, RunResult
from latentloom.engine.folders import Folders
from latentloom.engine.residency import HOME, modules_in
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.interop.comfy.jobs_view import node_output
from latentloom.models.folders import ModelFolders
from latentloom.models.handles import Checkpoint
from latentloom.models.weight_dtype import weight_bytes
from latentloom.registry import build_registry
from tests.support import WORKFLOWS

A, B = "tiny-a.safetensors", "tiny-b.safetensors"


@pytest.fixture(scope="module")
def two_checkpoints(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-a: the shared tiny SD 1.5; tiny-b: the same with every weight nudged (other
    weights, same layout), so a mix-up of homes would change the image."""
    root = tmp_path_factory.mktemp("residency")
    (root / "checkpoints").mkdir()
    source = models_dir / "checkpoints" / "tiny-sd15.safetensors"
    shutil.copyfile(source, root / "checkpoints" / A)
    generator = torch.Generator().manual_seed(7)
    with safe_open(source, "pt") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    for key, tensor in tensors.items():
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator) * 0.01
            tensors[key] = tensor + noise.to(tensor.dtype)
    save_file(tensors, root / "checkpoints" / B, metadata=metadata)
    return root


def _engine(models: Path, tmp_path: Path, device_budget_bytes: int | None) -> Engine:
    folders = Folders(ModelFolders.of([models]), tmp_path)
    settings = RunSettings(
        torch.device("cpu"),
        torch.float32,
        folders,
        tmp_path / "output",
        device_budget_bytes=device_budget_bytes,
    )
    return Engine(build_registry(entry_point_packs=False), settings, OutputCache(2**30))


def _workflow(checkpoint: str, seed: int) -> Workflow:
    document = parse_workflow(json.loads((WORKFLOWS / "txt2img.json").read_text())).to_json()
    nodes = document["nodes"]
    nodes["checkpoint"]["inputs"]["checkpoint"] = checkpoint
    nodes["latent"]["inputs"].update(width=64, height=64)
    nodes["sampler"]["inputs"].update(seed=seed, steps=2)
    return parse_workflow(document)


def _run(engine: Engine, checkpoint: str, seed: int, events: list[Any] | None = None) -> RunResult:
    sink = events.append if events is not None else lambda event: None
    return engine.run(_workflow(checkpoint, seed), targets=["decode", "checkpoint"], on_event=sink)


def _image(result: RunResult) -> torch.Tensor:
    image = result.outputs["decode"]["image"]
    assert isinstance(image, torch.Tensor)
    return image


def _checkpoint(result: RunResult) -> Checkpoint:
    outputs = result.outputs["checkpoint"]
    return Checkpoint(outputs["model"], outputs["clip"], outputs["vae"])


def _unet(checkpoint: Checkpoint) -> nn.Module:
    # diffusers' ModelMixin is a torch Module, but mypy cannot see through its lazy imports.
    return cast(nn.Module, checkpoint.model.unet)


def _sizes(checkpoint: Checkpoint) -> dict[str, int]:
    held = modules_in({"c": checkpoint})
    return {h.label: weight_bytes(h.module) for h in held}


@pytest.fixture(scope="module")
def unmanaged(two_checkpoints: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference: images of A (seed 1), B (seed 1), A (seed 2) with no manager."""
    engine = _engine(two_checkpoints, tmp_path_factory.mktemp("plain"), None)
    assert not engine.residency.enabled
    results = [_run(engine, A, 1), _run(engine, B, 1), _run(engine, A, 2)]
    assert all(result.memory == {} for result in results)
    return {"images": [_image(r) for r in results], "checkpoint": _checkpoint(results[0])}


def test_on_the_cpu_nothing_is_managed(unmanaged: dict[str, Any]) -> None:
    """Without a budget the loader's tensors are the ones that run: no copies, CPU loaders."""
    checkpoint = unmanaged["checkpoint"]
    assert next(_unet(checkpoint).parameters()).device.type == "cpu"
    settings = RunSettings(torch.device("cpu"), torch.float32, None, Path("."))  # type: ignore[arg-type]
    assert NodeContext("n", settings, CancelToken()).weights_device == torch.device("cpu")


def test_modules_in_finds_each_handles_modules_once(unmanaged: dict[str, Any]) -> None:
    checkpoint: Checkpoint = unmanaged["checkpoint"]
    held = modules_in({"model": checkpoint.model, "again": checkpoint.model, "vae": checkpoint.vae})
    assert [(h.label, h.module) for h in held] == [
        ("tiny-a.safetensors: unet", checkpoint.model.unet),
        ("tiny-a.safetensors: module", checkpoint.vae.module),
    ]


def test_two_checkpoints_alternate_within_a_budget_that_holds_one(
    two_checkpoints: Path, tmp_path: Path, unmanaged: dict[str, Any]
) -> None:
    sizes = _sizes(unmanaged["checkpoint"])
    one = sum(sizes.values())
    # Room for one checkpoint, not for it and any model of the other.
    budget = one + min(sizes.values()) - 1
    engine = _engine(two_checkpoints, tmp_path, budget)
    manager = engine.residency.manager
    assert manager is not None and manager.device == HOME

    events: list[Any] = []
    first = _run(engine, A, 1, events)
    a_names = {f"{A}: {field}" for field in ("unet", "module", "encoders[0]: model")}
    b_names = {name.replace(A, B) for name in a_names}
    assert {name for r in first.memory.values() for name in r.loaded} == a_names
    # The first node holding a model loads it: Empty Latent reads the MODEL's family.
    assert first.memory["latent"].loaded == (f"{A}: unet",)
    assert first.memory["sampler"].loaded == ()
    assert set(first.memory["decode"].resident) == a_names
    # The node report shows what moved for a node; nodes that moved nothing show nothing new.
    shown = {e.node: e.outputs.get("memory") for e in events if isinstance(e, NodeFinished)}
    assert shown["decode"] == [first.memory["decode"].to_json()]
    assert shown["decode"][0]["loaded"] == [f"{A}: module"]
    assert shown["sampler"] is None and shown["checkpoint"] is None
    decoded = next(e for e in events if isinstance(e, NodeFinished) and e.node == "decode")
    assert node_output(decoded.outputs) == {}  # ComfyUI clients are not shown it

    second = _run(engine, B, 1)
    assert {name for r in second.memory.values() for name in r.offloaded} == a_names
    assert {name for r in second.memory.values() for name in r.loaded} == b_names
    assert set(second.memory["decode"].resident) == b_names
    a, b = _checkpoint(first), _checkpoint(second)
    assert not manager.is_resident(_unet(a)) and manager.is_resident(_unet(b))
    assert manager.resident_bytes == one

    third = _run(engine, A, 2)  # loaders cached: A comes back from its CPU home, not the file
    assert third.cached[:1] == ["checkpoint"] and "checkpoint" not in third.executed
    assert third.memory["sampler"].loaded == (f"{A}: unet",)
    # Least recently used goes first: B's text encoder (used at the start of the last run),
    # which frees enough; B's UNet and VAE stay.
    assert third.memory["sampler"].offloaded == (f"{B}: encoders[0]: model",)
    assert set(third.memory["sampler"].resident) == {f"{A}: unet", f"{B}: unet", f"{B}: module"}

    for result, expected in zip((first, second, third), unmanaged["images"], strict=True):
        assert torch.equal(_image(result), expected)


def test_a_unet_bigger_than_the_budget_streams_with_identical_results(
    two_checkpoints: Path, tmp_path: Path, unmanaged: dict[str, Any]
) -> None:
    sizes = _sizes(unmanaged["checkpoint"])
    unet = sizes[f"{A}: unet"]
    assert unet > sizes[f"{A}: module"]  # the VAE fits where the UNet does not
    engine = _engine(two_checkpoints, tmp_path, unet - 1)
    result = _run(engine, A, 1)
    report = result.memory["sampler"]
    assert report.streamed == (f"{A}: unet",) and report.loaded == ()
    states = {model.name: model.state for model in report.models}
    assert states[f"{A}: unet"] == "streamed"
    # The text encoder is bigger still: it streams too, layer by layer (transformers' wrapper
    # modules opened down to their ModuleList).
    assert result.memory["positive"].streamed == (f"{A}: encoders[0]: model",)
    assert result.memory["decode"].loaded == (f"{A}: module",)
    assert torch.equal(_image(result), unmanaged["images"][0])
    unet_module = _unet(_checkpoint(result))
    manager = engine.residency.manager
    assert manager is not None and manager.is_streaming(unet_module)
    engine.residency.offload_all()  # hooks off, every tensor back at its home
    assert not manager.is_streaming(unet_module)
    assert torch.equal(_image(_run(engine, A, 1)), unmanaged["images"][0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_alternates_and_streams(
    two_checkpoints: Path, tmp_path: Path
) -> None:  # pragma: no cover - GPU machines only
    folders = Folders(ModelFolders.of([two_checkpoints]), tmp_path)

    def engine(budget: int | None) -> Engine:
        settings = RunSettings(
            torch.device("cuda"), torch.float32, folders, tmp_path, device_budget_bytes=budget
        )
        return Engine(build_registry(entry_point_packs=False), settings, OutputCache(2**30))

    plain = engine(2**40)  # everything fits: loaded once, never moved again
    expected = [_image(_run(plain, name, 1)) for name in (A, B)]
    sizes = _sizes(_checkpoint(_run(plain, A, 1)))
    managed = engine(sum(sizes.values()) + min(sizes.values()) - 1)
    first, second = _run(managed, A, 1), _run(managed, B, 1)
    a, b = _checkpoint(first), _checkpoint(second)
    assert next(_unet(a).parameters()).device.type == "cpu"  # offloaded home
    assert next(_unet(b).parameters()).device.type == "cuda"
    assert torch.equal(_image(first), expected[0]) and torch.equal(_image(second), expected[1])
    streamed = engine(sizes[f"{A}: unet"] - 1)
    result = _run(streamed, A, 1)
    assert result.memory["sampler"].streamed == (f"{A}: unet",)
    assert torch.allclose(_image(result), expected[0], atol=1e-6)
