"""IP-Adapter against diffusers' own IP-Adapter path, on tiny files in the real layout.

The oracle: diffusers' `_load_ip_adapter_weights` (what `load_ip_adapter` calls) given the same
file's state dict installs its IP-Adapter attention processors and image projection in a copy
of the UNet; fed the same CLIP embeddings through `added_cond_kwargs["image_embeds"]`, its
output must equal our patched UNet's within 1e-5, for base and plus adapters, weights other
than 1, and two adapters stacked. Then: weight 0 is the unpatched model bit for bit, the
UNet's processors are restored after sampling (even when it fails), start/end switch at the
step whose sigma crosses the boundary, and files or models that do not fit are refused by
name.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from latentloom.models.attention_patching import installed, unet_call
from latentloom.models.clip_vision import ClipVision, encode_image, load_clip_vision
from latentloom.models.clip_vision_tiny import make_tiny_clip_vision
from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.handles import Checkpoint, Conditioning, DiffusionModel
from latentloom.models.ip_adapter import IpAdapter, load_ip_adapter
from latentloom.models.ip_adapter_patch import IpAdapterMismatchError, apply_ip_adapter
from latentloom.models.ip_adapter_tiny import make_tiny_ip_adapter, tiny_ip_adapter_state
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.regions import percent_to_sigma
from latentloom.sampling.run import sample, sample_advanced

TOLERANCE = 1e-5


def unet(model: DiffusionModel) -> Any:
    """The diffusers UNet, untyped (mypy cannot see diffusers' modules)."""
    return model.unet


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ip_adapter")


@pytest.fixture(scope="module")
def checkpoints(folder: Path) -> dict[str, Checkpoint]:
    loaded = {}
    for family in ("sd15", "sdxl"):
        path = make_tiny_checkpoint(family, folder / f"{family}.safetensors", seed=0)
        loaded[family] = load_checkpoint(path, device=None, dtype=None)
    return loaded


@pytest.fixture(scope="module")
def clip_vision(folder: Path) -> ClipVision:
    return load_clip_vision(make_tiny_clip_vision(folder / "clip_vision.safetensors"))


def adapter_file(folder: Path, checkpoint: Checkpoint, kind: str, seed: int = 0) -> Path:
    name = f"{checkpoint.model.family.name}-{kind}-{seed}.safetensors"
    return make_tiny_ip_adapter(folder / name, unet(checkpoint.model), kind, seed)  # type: ignore[arg-type]


def image() -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.rand(1, 96, 128, 3, generator=generator)


def diffusers_image_embeds(adapter: IpAdapter, clip: ClipVision) -> torch.Tensor:
    """[2, 1, ...]: the negative row's then the positive row's CLIP input, as diffusers takes."""
    encoded = encode_image(clip, image(), "center")
    if adapter.kind == "base":
        cond = encoded.image_embeds
        uncond = torch.zeros_like(cond)
    else:
        cond = encoded.penultimate_hidden_states
        uncond = encode_image(clip, torch.zeros(1, 224, 224, 3)).penultimate_hidden_states
    return torch.cat([uncond, cond]).unsqueeze(1)


def diffusers_unet(model: DiffusionModel, files: list[Path], scales: list[float]) -> Any:
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    reference = copy.deepcopy(unet(model))
    state_dicts = []
    for path in files:
        flat = {k: v.float() for k, v in load_file(str(path)).items()}
        nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            group, _, rest = key.partition(".")
            nested[group][rest] = value
        state_dicts.append(nested)
    reference._load_ip_adapter_weights(state_dicts, low_cpu_mem_usage=False)
    for processor in reference.attn_processors.values():
        if isinstance(processor, IPAdapterAttnProcessor2_0):
            processor.scale = scales
    return reference


def unet_inputs(model: DiffusionModel) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(5)
    context = unet(model).config.cross_attention_dim
    inputs: dict[str, Any] = {
        "sample": torch.randn(2, 4, 8, 8, generator=generator),
        "timestep": torch.tensor(500.0),
        "encoder_hidden_states": torch.randn(2, 77, context, generator=generator),
        "added_cond_kwargs": {},
    }
    if model.family.name == "sdxl":
        pooled = unet(model).config.projection_class_embeddings_input_dim - 6 * 8
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2, pooled, generator=generator),
            "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]] * 2),
        }
    return inputs


@pytest.mark.parametrize(
    ("family", "kinds", "weights"),
    [
        ("sd15", ["base"], [1.0]),
        ("sd15", ["plus"], [0.7]),
        ("sdxl", ["base"], [1.0]),
        ("sdxl", ["plus"], [1.3]),
        ("sd15", ["base", "plus"], [0.6, 1.0]),
    ],
)
@torch.inference_mode()
def test_patched_unet_equals_diffusers_ip_adapter(
    folder: Path,
    checkpoints: dict[str, Checkpoint],
    clip_vision: ClipVision,
    family: str,
    kinds: list[str],
    weights: list[float],
) -> None:
    checkpoint = checkpoints[family]
    files = [adapter_file(folder, checkpoint, kind, seed) for seed, kind in enumerate(kinds)]
    adapters = [load_ip_adapter(path) for path in files]
    model = checkpoint.model
    for adapter, weight in zip(adapters, weights, strict=True):
        model = apply_ip_adapter(model, adapter, clip_vision, image(), weight)
    inputs = unet_inputs(model)
    plain = unet(model)(**inputs, return_dict=False)[0]
    with installed(unet(model), model.attention_patches), unet_call(1.0, [True, False]):
        ours = unet(model)(**inputs, return_dict=False)[0]

    reference = diffusers_unet(model, files, weights)
    embeds = [diffusers_image_embeds(adapter, clip_vision) for adapter in adapters]
    theirs = reference(
        **inputs | {"added_cond_kwargs": inputs["added_cond_kwargs"] | {"image_embeds": embeds}},
        return_dict=False,
    )[0]

    assert (ours - theirs).abs().max().item() < TOLERANCE
    assert (ours - plain).abs().max().item() > 1e-3  # the adapter does change the prediction


def conditioning(model: DiffusionModel, seed: int) -> Conditioning:
    generator = torch.Generator().manual_seed(seed)
    return Conditioning.of(
        torch.randn(1, 77, unet(model).config.cross_attention_dim, generator=generator)
    )


def run(model: DiffusionModel, steps: int = 6) -> torch.Tensor:
    return sample(
        model,
        conditioning(model, 1),
        conditioning(model, 2),
        torch.zeros(1, 4, 8, 8),
        seed=7,
        steps=steps,
        cfg=4.0,
        sampler="euler",
        scheduler="normal",
    )


def test_weight_zero_is_the_unpatched_model_exactly(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    checkpoint = checkpoints["sd15"]
    adapter = load_ip_adapter(adapter_file(folder, checkpoint, "plus"))
    patched = apply_ip_adapter(checkpoint.model, adapter, clip_vision, image(), 0.0)
    full = apply_ip_adapter(checkpoint.model, adapter, clip_vision, image(), 1.0)
    plain = run(checkpoint.model)
    assert torch.equal(run(patched), plain)
    assert (run(full) - plain).abs().max().item() > 1e-2


def test_processors_are_restored_after_sampling_and_after_a_failure(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    checkpoint = checkpoints["sd15"]
    before = dict(unet(checkpoint.model).attn_processors)
    adapter = load_ip_adapter(adapter_file(folder, checkpoint, "base"))
    patched = apply_ip_adapter(checkpoint.model, adapter, clip_vision, image(), 1.0)
    run(patched, steps=2)
    after = dict(unet(checkpoint.model).attn_processors)
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)

    def cancel(step: int, total: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        sample(
            patched, conditioning(patched, 1), conditioning(patched, 2), torch.zeros(1, 4, 8, 8),
            seed=7, steps=3, cfg=4.0, sampler="euler", scheduler="normal", callback=cancel,
        )  # fmt: skip
    restored = unet(checkpoint.model).attn_processors
    assert all(restored[name] is before[name] for name in before)


def test_start_at_switches_on_at_the_step_whose_sigma_crosses_it(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    """A run with start_at = p equals steps 0..k without the adapter then k..n with it, where
    k is the first step whose sigma lies at or below the sigma of p."""
    checkpoint = checkpoints["sd15"]
    model = checkpoint.model
    adapter = load_ip_adapter(adapter_file(folder, checkpoint, "base"))
    steps, start_at = 6, 0.4
    from latentloom.sampling.sigma_ops import ksampler_sigmas

    sigmas = ksampler_sigmas(model, "euler", "normal", steps, 1.0)
    boundary = percent_to_sigma(
        DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), start_at
    )
    switch = next(i for i, sigma in enumerate(sigmas.tolist()) if sigma <= boundary)
    assert 0 < switch < steps  # the boundary falls inside the run

    late = apply_ip_adapter(model, adapter, clip_vision, image(), 1.0, start_at=start_at)
    always = apply_ip_adapter(model, adapter, clip_vision, image(), 1.0)
    common: dict[str, Any] = {
        "seed": 7, "steps": steps, "cfg": 4.0, "sampler": "euler", "scheduler": "normal"
    }  # fmt: skip
    positive, negative = conditioning(model, 1), conditioning(model, 2)
    first = sample_advanced(
        model, positive, negative, torch.zeros(1, 4, 8, 8), add_noise=True,
        start_at_step=0, end_at_step=switch, return_with_leftover_noise=True, **common,
    )  # fmt: skip
    expected = sample_advanced(
        always, positive, negative, first, add_noise=False,
        start_at_step=switch, end_at_step=steps, return_with_leftover_noise=False, **common,
    )  # fmt: skip
    result = run(late, steps)
    assert (result - expected).abs().max().item() < 1e-6
    assert (result - run(always, steps)).abs().max().item() > 1e-3
    assert (result - run(model, steps)).abs().max().item() > 1e-3


def test_end_at_zero_width_range_never_applies(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    checkpoint = checkpoints["sd15"]
    adapter = load_ip_adapter(adapter_file(folder, checkpoint, "base"))
    # start = end = 1: only sigma 0, which the denoiser is never called at.
    never = apply_ip_adapter(checkpoint.model, adapter, clip_vision, image(), 1.0, 1.0, 1.0)
    assert torch.equal(run(never), run(checkpoint.model))
    with pytest.raises(ValueError, match=r"start_at and end_at must satisfy 0 <= 0.8 <= 0.2 <= 1"):
        apply_ip_adapter(checkpoint.model, adapter, clip_vision, image(), 1.0, 0.8, 0.2)


def test_an_sd15_adapter_on_sdxl_is_refused_by_name(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    path = adapter_file(folder, checkpoints["sd15"], "base")
    adapter = load_ip_adapter(path)
    sdxl = checkpoints["sdxl"].model
    with pytest.raises(IpAdapterMismatchError) as caught:
        apply_ip_adapter(sdxl, adapter, clip_vision, image(), 1.0)
    assert str(caught.value) == (
        f"{path} was made for a UNet with 4 cross-attention layers of text width 32; "
        f"{sdxl.source} (SDXL) has 11 of width 64: use an IP-Adapter for SDXL"
    )


def test_the_loader_reads_kinds_and_refuses_faceid_and_gaps(
    folder: Path, checkpoints: dict[str, Checkpoint]
) -> None:
    base = load_ip_adapter(adapter_file(folder, checkpoints["sd15"], "base"))
    plus = load_ip_adapter(adapter_file(folder, checkpoints["sd15"], "plus"))
    assert (base.kind, base.image_embed_dim, base.cross_attention_dim, base.layer_count) == (
        "base", 16, 32, 4
    )  # fmt: skip
    assert (plus.kind, plus.image_embed_dim, plus.reads_hidden_states) == ("plus", 32, True)

    state = tiny_ip_adapter_state(unet(checkpoints["sd15"].model), "base")
    faceid = {k: v for k, v in state.items() if not k.startswith("image_proj.")}
    faceid["image_proj.proj.0.weight"] = torch.zeros(64, 16)
    faceid["image_proj.norm.weight"] = torch.zeros(32)
    save_tensors(folder / "faceid.safetensors", faceid)
    with pytest.raises(UnrecognizedCheckpointError, match="an IP-Adapter FaceID file"):
        load_ip_adapter(folder / "faceid.safetensors")

    gap = {k: v for k, v in state.items() if not k.startswith("ip_adapter.3.")}
    save_tensors(folder / "gap.safetensors", gap)
    with pytest.raises(WeightMismatchError, match=r"found numbers \[1, 5, 7\]"):
        load_ip_adapter(folder / "gap.safetensors")

    save_tensors(folder / "lora-like.safetensors", {"lora_unet_x.alpha": torch.ones(())})
    with pytest.raises(UnrecognizedCheckpointError, match="not an IP-Adapter"):
        load_ip_adapter(folder / "lora-like.safetensors")


def test_the_adapter_refuses_a_clip_vision_of_another_width(
    folder: Path, checkpoints: dict[str, Checkpoint], clip_vision: ClipVision
) -> None:
    adapter = load_ip_adapter(adapter_file(folder, checkpoints["sd15"], "base"))
    narrower = dataclasses.replace(adapter, image_embed_dim=1024)
    with pytest.raises(
        IpAdapterMismatchError, match="reads CLIP vision image embeddings 1024 wide"
    ):
        apply_ip_adapter(checkpoints["sd15"].model, narrower, clip_vision, image(), 1.0)
