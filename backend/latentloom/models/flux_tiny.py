"""Tiny random FLUX.1 files in the layouts users keep: the transformer (original BFL names, for
`diffusion_models/`) and the AE (LDM names, 16 latent channels, no quant convs, for `vae/`).

The transformer keeps FLUX's real structure in miniature: double- and single-stream blocks,
qk-norm, rotary positions on three axes, the pooled-text and timestep embedders, and for dev
the guidance embedder. It is built by diffusers (`FluxTransformer2DModel`) and written through
the inverse of the key map the loader reads (`flux_keys.py`), so loading the file back gives
exactly these weights. Text widths match the tiny text encoders: the context width is the tiny
T5's, the pooled width the tiny CLIP-L's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from torch import nn

from latentloom.models.flux_keys import FLUX_MLP_RATIO, flux_target, rope_axes
from latentloom.models.safetensors_write import save_tensors

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, FluxTransformer2DModel

FluxVariant = Literal["dev", "schnell"]
TINY_FLUX_HEADS, TINY_FLUX_HEAD_DIM = 2, 32
TINY_FLUX_METADATA = "latentloom.tiny"


def tiny_flux_config(variant: FluxVariant, context_width: int, pooled_width: int) -> dict[str, Any]:
    """Two double and two single blocks, 64 wide; dev embeds guidance, schnell does not."""
    return {
        "patch_size": 1,
        "in_channels": 64,
        "out_channels": 64,
        "num_layers": 2,
        "num_single_layers": 2,
        "attention_head_dim": TINY_FLUX_HEAD_DIM,
        "num_attention_heads": TINY_FLUX_HEADS,
        "joint_attention_dim": context_width,
        "pooled_projection_dim": pooled_width,
        "guidance_embeds": variant == "dev",
        "axes_dims_rope": rope_axes(TINY_FLUX_HEAD_DIM),
    }


def _seeded_rounded(seed: int, build: Any, dtype: torch.dtype) -> Any:
    """Build under a private RNG state; round every weight to the storage dtype and freeze."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = cast(nn.Module, build())
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))
    return module.eval().requires_grad_(False)


def tiny_flux_transformer(
    variant: FluxVariant,
    *,
    context_width: int,
    pooled_width: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
) -> FluxTransformer2DModel:
    from diffusers import FluxTransformer2DModel

    config = tiny_flux_config(variant, context_width, pooled_width)
    module = _seeded_rounded(seed * 16 + 5, lambda: FluxTransformer2DModel(**config), dtype)
    return cast("FluxTransformer2DModel", module)


def flux_original_names(config: dict[str, Any]) -> list[str]:
    """Every tensor name of an original FLUX transformer file with this config."""
    pairs = ("weight", "bias")
    embedders = ["time_in", "vector_in"] + (["guidance_in"] if config["guidance_embeds"] else [])
    names = [
        f"{e}.{layer}.{p}" for e in embedders for layer in ("in_layer", "out_layer") for p in pairs
    ]
    names += [f"{m}.{p}" for m in ("img_in", "txt_in", "final_layer.linear") for p in pairs]
    names += [f"final_layer.adaLN_modulation.1.{p}" for p in pairs]
    double = ["img_mod.lin", "txt_mod.lin", "img_attn.qkv", "txt_attn.qkv", "img_attn.proj",
              "txt_attn.proj", "img_mlp.0", "img_mlp.2", "txt_mlp.0", "txt_mlp.2"]  # fmt: skip
    norms = [f"{s}_attn.norm.{n}_norm.scale" for s in ("img", "txt") for n in ("query", "key")]
    for index in range(config["num_layers"]):
        names += [f"double_blocks.{index}.{m}.{p}" for m in double for p in pairs]
        names += [f"double_blocks.{index}.{n}" for n in norms]
    single = ["linear1", "linear2", "modulation.lin"]
    for index in range(config["num_single_layers"]):
        names += [f"single_blocks.{index}.{m}.{p}" for m in single for p in pairs]
        names += [f"single_blocks.{index}.norm.{n}_norm.scale" for n in ("query", "key")]
    return names


def flux_original_state(
    module: FluxTransformer2DModel, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The module's weights under original names (the inverse of `flux_load.split_flux`)."""
    config = dict(module.config)  # type: ignore[attr-defined]
    state = cast(nn.Module, module).state_dict()
    hidden = config["num_attention_heads"] * config["attention_head_dim"]
    assert FLUX_MLP_RATIO * hidden == state["transformer_blocks.0.ff.net.0.proj.weight"].shape[0]
    original = {}
    for name in flux_original_names(config):
        target = flux_target(name, hidden)
        if target is None:
            raise KeyError(f"'{name}' has no diffusers counterpart")
        tensor = torch.cat([state[key] for key in target.keys], dim=0)
        if target.swap:  # swapping the halves back restores (shift, scale)
            first, second = tensor.chunk(2, dim=0)
            tensor = torch.cat([second, first], dim=0)
        original[name] = tensor.to(dtype)
    return original


def make_tiny_flux_transformer(
    path: str | Path,
    variant: FluxVariant,
    *,
    context_width: int,
    pooled_width: int,
    seed: int = 0,
    prefix: str = "",
    dtype: torch.dtype = torch.float16,
) -> Path:
    """The transformer as `flux1-<variant>.safetensors` is published (`prefix` "" ) or as it
    sits inside an all-in-one checkpoint (`model.diffusion_model.`)."""
    module = tiny_flux_transformer(
        variant, context_width=context_width, pooled_width=pooled_width, seed=seed, dtype=dtype
    )
    state = flux_original_state(module, dtype)
    metadata = {TINY_FLUX_METADATA: f"flux-{variant}", "latentloom.seed": str(seed)}
    save_tensors(path, {prefix + key: value for key, value in state.items()}, metadata)
    return Path(path)


# --- the AE ------------------------------------------------------------------------------


def tiny_ae_config(scaling_factor: float, shift_factor: float) -> dict[str, Any]:
    """FLUX's AE in miniature: four levels (8x), 16 latent channels, no quant convs."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 16, 32, 32],
        "layers_per_block": 1,
        "latent_channels": 16,
        "norm_num_groups": 8,
        "sample_size": 1024,
        "scaling_factor": scaling_factor,
        "shift_factor": shift_factor,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }


def tiny_flux_ae(
    scaling_factor: float, shift_factor: float, *, seed: int = 0, dtype: torch.dtype = torch.float16
) -> AutoencoderKL:
    from diffusers import AutoencoderKL

    config = tiny_ae_config(scaling_factor, shift_factor)
    return cast(
        "AutoencoderKL", _seeded_rounded(seed * 16 + 6, lambda: AutoencoderKL(**config), dtype)
    )


def make_tiny_flux_ae(
    path: str | Path,
    *,
    scaling_factor: float,
    shift_factor: float,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """`ae.safetensors` as Black Forest Labs publish it: LDM names without a prefix."""
    from latentloom.models.export import original_tensors, to_original_layout
    from latentloom.models.family import SD15
    from latentloom.models.keymap import KeyMap
    from latentloom.models.layout import VAE_PREFIX

    module = cast(nn.Module, tiny_flux_ae(scaling_factor, shift_factor, seed=seed, dtype=dtype))
    state = module.state_dict()
    config: dict[str, Any] = dict(cast(Any, module).config)
    # Only the VAE half of the checkpoint key map is used; its family does not change names.
    keymap = KeyMap(SD15, {"layers_per_block": 1, "up_block_types": []}, config, {})
    tensors = {
        item.name.removeprefix(VAE_PREFIX): to_original_layout(
            item, [state[key] for _, key in item.parts]
        ).to(dtype)
        for item in original_tensors({"vae": module}, keymap)
    }
    save_tensors(path, tensors, {TINY_FLUX_METADATA: "flux-ae", "latentloom.seed": str(seed)})
    return Path(path)


# --- the separate files a FLUX user keeps ------------------------------------------------

FLUX_TINY_FILES = {
    "dev": "diffusion_models/tiny-flux-dev.safetensors",
    "schnell": "diffusion_models/tiny-flux-schnell.safetensors",
    "clip_l": "text_encoders/tiny-clip-l.safetensors",
    "t5xxl": "text_encoders/tiny-t5xxl.safetensors",
    "ae": "vae/tiny-flux-ae.safetensors",
}


def make_tiny_flux_parts(root: str | Path, *, seed: int = 0) -> list[Path]:
    """Under a model root: both transformers (`diffusion_models/`), CLIP-L and T5-XXL
    (`text_encoders/`) and the AE (`vae/`), as the FLUX examples name them."""
    from latentloom.models.family import FLUX
    from latentloom.models.tiny import TINY_TEXT_WIDTH
    from latentloom.models.tiny_parts import make_tiny_clip
    from latentloom.models.tiny_t5 import TINY_T5, write_tiny_t5

    paths = {name: Path(root) / relative for name, relative in FLUX_TINY_FILES.items()}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    widths = {"context_width": int(TINY_T5["d_model"]), "pooled_width": TINY_TEXT_WIDTH}
    for variant in ("dev", "schnell"):
        make_tiny_flux_transformer(paths[variant], variant, seed=seed, **widths)  # type: ignore[arg-type]
    make_tiny_clip(paths["clip_l"], family="sd15", seed=seed)  # CLIP-L as `text_model.*`
    write_tiny_t5(paths["t5xxl"], seed=seed)
    make_tiny_flux_ae(
        paths["ae"],
        scaling_factor=FLUX.vae_scaling_factor,
        shift_factor=FLUX.vae_shift_factor,
        seed=seed,
    )
    return list(paths.values())


def make_tiny_flux_checkpoint(
    path: str | Path, variant: FluxVariant, *, vae_prefix: str = "vae.", seed: int = 0
) -> Path:
    """An all-in-one FLUX.1 file as ComfyUI saves one: the parts `make_tiny_flux_parts` writes,
    under `model.diffusion_model.`, `text_encoders.clip_l.transformer.`,
    `text_encoders.t5xxl.transformer.` and `vae_prefix` (`vae.` or `first_stage_model.`)."""
    import tempfile

    from latentloom.models.flux_keys import FLUX_PREFIX
    from latentloom.models.safetensors_file import SafetensorsFile

    prefixes = {
        variant: FLUX_PREFIX,
        "clip_l": "text_encoders.clip_l.transformer.",
        "t5xxl": "text_encoders.t5xxl.transformer.",
        "ae": vae_prefix,
    }
    tensors: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as parts:
        make_tiny_flux_parts(parts, seed=seed)
        for name, prefix in prefixes.items():
            with SafetensorsFile(Path(parts) / FLUX_TINY_FILES[name]) as file:
                tensors.update({prefix + key: file.read(key) for key in file})
    metadata = {TINY_FLUX_METADATA: f"flux-{variant}-checkpoint", "latentloom.seed": str(seed)}
    save_tensors(path, tensors, metadata)
    return Path(path)
