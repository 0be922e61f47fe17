"""The fast path wired through the engine: settings off by default and CUDA-only unless forced;
forced on the CPU, a LoRA + IP-Adapter graph on a channels-last, compiled UNet samples the
plain engine's latent within tolerance, the LoRA and the IP-Adapter still change it, and a
loaded UNet is changed once however many jobs share it; the attention a loaded UNet runs is
diffusers' SDPA processor.

torch.compile on the CPU builds C++ kernels: the compiled test takes ~40-100 s on a loaded
2-core machine, so it is marked slow; the wiring tests beside it run without compiling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.engine.setup import make_engine
from latentloom.fast_path import (
    APPLIED_MARK,
    FastPathSettings,
    apply_fast_path,
    apply_to_new_models,
    attention_processors,
    compile_cache_dir,
    uses_sdpa,
)
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.jobs.worker_protocol import WorkerConfig
from latentloom.server.settings import ServerSettings
from tests.support import WORKFLOWS

# Of the plain latent's range: compiled kernels and channels-last convolutions reorder float
# sums, and cfg 7 multiplies each step's difference (measured 2.1e-4 absolute, range ~8).
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from latentloom.models.ip_adapter_tiny import make_example_ip_adapters
    from latentloom.models.load import load_checkpoint
    from latentloom.models.lora_tiny import make_tiny_lora
    from latentloom.models.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("fast-path-models")
    for folder in ("checkpoints", "loras"):
        (root / folder).mkdir()
    sd15 = make_tiny_checkpoint("sd15", root / "checkpoints" / "tiny-sd15.safetensors", seed=0)
    loaded = load_checkpoint(sd15, device="cpu", dtype=torch.float32)
    unet: Any = loaded.model.unet
    make_tiny_lora(unet, loaded.clip, root / "loras" / "tiny-lora-sd15.safetensors")
    make_example_ip_adapters(root)
    return root


def _engine(models: Path, tmp_path: Path, fast_path: FastPathSettings | None) -> Engine:
    return make_engine(
        model_dirs=[models],
        output_dir=tmp_path / "output",
        input_dir=WORKFLOWS / "inputs",
        device="cpu",
        fast_path=fast_path,
    )


def _lora_ip_adapter_graph(lora: float, ip_weight: float) -> Workflow:
    """The IP-Adapter example with the LoRA example's loader between checkpoint and model,
    at 64², 2 steps."""
    document = json.loads((WORKFLOWS / "ip_adapter.json").read_text())
    nodes = document["nodes"]
    nodes["lora"] = json.loads((WORKFLOWS / "lora.json").read_text())["nodes"]["lora"]
    nodes["lora"]["inputs"].update(strength_model=lora, strength_clip=lora)
    nodes["apply"]["inputs"].update(model={"node": "lora", "output": "model"}, weight=ip_weight)
    for prompt in ("positive", "negative"):
        nodes[prompt]["inputs"]["clip"] = {"node": "lora", "output": "clip"}
    nodes["latent"]["inputs"].update(width=64, height=64)
    nodes["sampler"]["inputs"].update(steps=2)
    return parse_workflow(document)


def _run(engine: Engine, workflow: Workflow) -> tuple[torch.Tensor, Any]:
    """The sampled latent and the loaded UNet module."""
    result = engine.run(workflow, targets=["checkpoint", "sampler"])
    samples: torch.Tensor = result.outputs["sampler"]["latent"].samples
    return samples, result.outputs["checkpoint"]["model"].unet


def test_the_settings_reach_the_engine_and_the_worker(tmp_path: Path) -> None:
    settings = ServerSettings.model_validate({"data": tmp_path, "compile_unet": True})
    assert settings.fast_path() == FastPathSettings(
        channels_last=False, compile=True, cache_dir=tmp_path / "torch-compile-cache"
    )
    assert ServerSettings.model_validate({}).fast_path().enabled is False  # off by default
    assert WorkerConfig((), tmp_path, tmp_path).fast_path == FastPathSettings()
    engine = make_engine(
        model_dirs=[], output_dir=tmp_path, input_dir=tmp_path, fast_path=settings.fast_path()
    )
    assert engine.settings.fast_path.compile


def test_the_serve_flags_and_the_config_file_set_them(tmp_path: Path) -> None:
    from latentloom.cli import _parser, _serve_settings

    config = tmp_path / "latentloom.toml"
    config.write_text("channels_last = true\n")
    flags = ["serve", "--data", str(tmp_path), "--config", str(config), "--compile"]
    settings = _serve_settings(_parser().parse_args(flags))
    assert (settings.channels_last, settings.compile_unet) == (True, True)
    plain = _serve_settings(_parser().parse_args(["serve", "--data", str(tmp_path)]))
    assert (plain.channels_last, plain.compile_unet) == (False, False)


def test_off_cuda_nothing_is_changed_unless_forced(models: Path) -> None:
    from latentloom.models.load import load_checkpoint

    model = load_checkpoint(
        models / "checkpoints" / "tiny-sd15.safetensors", device="cpu", dtype=torch.float32
    ).model
    unet: Any = model.unet
    cpu = torch.device("cpu")
    on = FastPathSettings(channels_last=True)
    assert apply_to_new_models([model], cpu, on) == 0
    assert unet.conv_in.weight.is_contiguous()
    forced = FastPathSettings(channels_last=True, force=True)
    assert apply_to_new_models([model, "not a model"], cpu, forced) == 1
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert getattr(unet, APPLIED_MARK) is True
    assert apply_to_new_models([model], cpu, forced) == 0  # once per module


def _forward(unet: Any) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    with torch.inference_mode():
        sample: torch.Tensor = unet(x, torch.tensor([500.0, 500.0]), context).sample
    return sample


def test_the_loaded_unet_attends_with_sdpa_and_channels_last_keeps_its_result(
    models: Path,
) -> None:
    from latentloom.models.load import load_checkpoint

    path = models / "checkpoints" / "tiny-sd15.safetensors"
    unet: Any = load_checkpoint(path, device="cpu", dtype=torch.float32).model.unet
    assert attention_processors(unet) == {"AttnProcessor2_0"} and uses_sdpa(unet)
    before = _forward(unet)
    returned: Any = apply_fast_path(unet, torch.device("cpu"), FastPathSettings(channels_last=True))
    assert returned is unet and unet.conv_in.weight.is_contiguous()  # the CPU: untouched
    apply_fast_path(unet, torch.device("cpu"), FastPathSettings(channels_last=True), force=True)
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(_forward(unet), before, atol=1e-5, rtol=1e-5)


def test_the_compile_cache_lives_in_the_data_folder(tmp_path: Path) -> None:
    assert compile_cache_dir(tmp_path) == tmp_path / "torch-compile-cache"


@pytest.mark.slow
# Importing dynamo touches torch.jit's deprecated script_method (torch's own, not ours).
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_compiled_channels_last_unet_keeps_the_result_and_the_patches(
    models: Path, tmp_path: Path
) -> None:
    import torch._dynamo

    patched = _lora_ip_adapter_graph(lora=0.8, ip_weight=0.8)
    plain, plain_unet = _run(_engine(models, tmp_path / "plain", None), patched)
    assert plain_unet._compiled_call_impl is None and not hasattr(plain_unet, APPLIED_MARK)
    forced = FastPathSettings(channels_last=True, compile=True, compile_mode="default", force=True)
    fast = _engine(models, tmp_path / "fast", forced)
    torch._dynamo.reset()
    compiled, loaded = _run(fast, patched)
    assert loaded._compiled_call_impl is not None  # nn.Module.compile, in place
    assert loaded.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it really ran compiled
    spread = (plain.max() - plain.min()).item()
    assert (compiled - plain).abs().max().item() / spread <= TOLERANCE
    # The LoRA's deltas and the IP-Adapter's attention still reach the compiled module: without
    # each the latent moves by far more than the tolerance.
    for lora, ip_weight in ((0.0, 0.8), (0.8, 0.0)):
        other, same = _run(fast, _lora_ip_adapter_graph(lora=lora, ip_weight=ip_weight))
        assert same is loaded  # the cached loader output: compiled once, not per job
        assert (other - compiled).abs().max().item() / spread > 100 * TOLERANCE
