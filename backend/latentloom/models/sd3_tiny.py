"""SD 3.x checkpoints of random weights in the original single-file layout: tiny ones for tests
and the demo, and full-size-shaped ones (3.5 medium / large) for the load benchmark and the
full-shape detection test.

The tiny model keeps 3.5 medium's structure in miniature: two joint blocks (the last one's
text stream pre-only), RMS q/k norms, a second image attention in block 0, a 16-channel VAE
without quant convs (four levels: a true 8x downscale), CLIP-L and CLIP-G with projections and
the real 49,408-token vocabulary, and C's tiny T5 (`tiny_t5.py`). The CLIP widths (8 + 16)
concatenate to less than T5's 32, so the zero padding SD 3 applies to the CLIP part is
exercised. Weights are the libraries' default initialisation, rounded to the storage dtype, so
loading reproduces the modules exactly. Names come from the inverse maps (`Sd3KeyMap.to_original`
and the checkpoint key map's VAE half), so writing and loading test each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import torch
from diffusers import AutoencoderKL, SD3Transformer2DModel
from torch import nn

from latentloom.models.build import empty_vae, text_model, text_root
from latentloom.models.export import OriginalTensor, to_original_layout
from latentloom.models.family import SD3
from latentloom.models.keymap import Source, Transform
from latentloom.models.layout import SD3_T5_PREFIX, SD3_TEXT_G, SD3_TEXT_L, Component, TextTower
from latentloom.models.safetensors_write import TensorSpec, save_tensors, write_safetensors
from latentloom.models.sd3_config import empty_transformer
from latentloom.models.sd3_keys import Sd3KeyMap, vae_names
from latentloom.models.tiny import _round_to, _seeded, tiny_clip_config

TINY_CLIP_WIDTHS = {"text_encoder": 8, "text_encoder_2": 16}
TINY_T5_WIDTH = 32  # tiny_t5.TINY_T5["d_model"]: the transformer's joint attention width


def tiny_transformer_config() -> dict[str, Any]:
    """Two blocks of width 32 (two 16-wide heads), as 3.5 medium: q/k norms, attn2 in block 0."""
    return {
        "sample_size": 32,
        "patch_size": 2,
        "in_channels": 16,
        "num_layers": 2,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": TINY_T5_WIDTH,
        "caption_projection_dim": 32,
        "pooled_projection_dim": sum(TINY_CLIP_WIDTHS.values()),
        "out_channels": 16,
        "pos_embed_max_size": 32,  # up to 512 px
        "dual_attention_layers": (0,),
        "qk_norm": "rms_norm",
    }


def tiny_vae_config() -> dict[str, Any]:
    return {
        "sample_size": 256,
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 16, 32, 32],
        "layers_per_block": 1,
        "latent_channels": 16,
        "norm_num_groups": 8,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "scaling_factor": SD3.vae_scaling_factor,
        "shift_factor": SD3.vae_shift_factor,
    }


def _tiny_clip(tower: TextTower, seed: int) -> nn.Module:
    config = tiny_clip_config(tower)
    width = TINY_CLIP_WIDTHS[tower.component]
    config.hidden_size, config.intermediate_size, config.projection_dim = width, 4 * width, width
    config.hidden_act = "gelu" if tower is SD3_TEXT_G else "quick_gelu"
    return _seeded(seed, lambda: text_model(config, with_projection=True))


def original_layout(
    modules: Mapping[Component, nn.Module], transformer_layers: int, vae_config: Mapping[str, Any]
) -> list[OriginalTensor]:
    """Every original tensor and the module tensors it is made of (CLIP towers as SD 3 stores
    them: transformers' names under the tower's prefix, `text_model.` included)."""
    towers = {SD3_TEXT_L.component: SD3_TEXT_L, SD3_TEXT_G.component: SD3_TEXT_G}
    transformer, vae = Sd3KeyMap(transformer_layers), vae_names(vae_config)
    grouped: dict[str, tuple[Transform, dict[int, tuple[Component, str]]]] = {}
    for component, module in modules.items():
        root = text_root(module)
        for key in module.state_dict():
            if component == "unet":
                source = transformer.to_original(key)
            elif component == "vae":
                source = vae.to_original("vae", key)
            else:
                tower = towers[component]
                if key.endswith("position_ids"):
                    continue
                name = key if key == "text_projection.weight" else "text_model." + key[len(root) :]
                source = Source(tower.prefix + name, "copy")
            grouped.setdefault(source.key, (source.transform, {}))[1][source.part] = (
                component,
                key,
            )
    return [
        OriginalTensor(name, transform, tuple(parts[i] for i in sorted(parts)))
        for name, (transform, parts) in grouped.items()
    ]


def tiny_sd3_modules(
    seed: int = 0, dtype: torch.dtype = torch.float16
) -> dict[Component, nn.Module]:
    transformer = _seeded(seed * 16, lambda: SD3Transformer2DModel(**tiny_transformer_config()))
    vae = _seeded(seed * 16 + 1, lambda: AutoencoderKL(**tiny_vae_config()))
    return {
        "unet": _round_to(cast(nn.Module, transformer), dtype),
        "vae": _round_to(cast(nn.Module, vae), dtype),
        "text_encoder": _round_to(_tiny_clip(SD3_TEXT_L, seed * 16 + 2), dtype),
        "text_encoder_2": _round_to(_tiny_clip(SD3_TEXT_G, seed * 16 + 3), dtype),
    }


def make_tiny_sd3(
    out_path: str | Path,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
    with_t5: bool = True,
    with_clip: bool = True,
) -> Path:
    """Write a tiny SD 3.5-medium-shaped single file (CLIP-L/G and T5 inside as asked)."""
    from latentloom.models.tiny_t5 import tiny_t5_state_dict

    modules = tiny_sd3_modules(seed, dtype)
    if not with_clip:
        modules = {name: m for name, m in modules.items() if name in ("unet", "vae")}
    states = {name: module.state_dict() for name, module in modules.items()}
    tensors = {
        item.name: to_original_layout(item, [states[c][k] for c, k in item.parts]).to(dtype)
        for item in original_layout(modules, 2, tiny_vae_config())
    }
    if with_t5:
        t5 = tiny_t5_state_dict(seed * 16 + 4, prefix=SD3_T5_PREFIX)
        tensors.update({key: value.to(dtype) for key, value in t5.items()})
    metadata = {"latentloom.tiny": "sd3", "latentloom.seed": str(seed)}
    save_tensors(out_path, tensors, metadata)
    return Path(out_path)


# --- full-size shapes --------------------------------------------------------------------

SD35_MEDIUM = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "out_channels": 16,
    "pos_embed_max_size": 384,
    "dual_attention_layers": tuple(range(13)),
    "qk_norm": "rms_norm",
}
SD35_LARGE = {
    **SD35_MEDIUM,
    "num_layers": 38,
    "num_attention_heads": 38,
    "caption_projection_dim": 2432,
    "pos_embed_max_size": 192,
    "dual_attention_layers": (),
}
SD3_FULL_VAE = {
    **tiny_vae_config(),
    "sample_size": 1024,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "norm_num_groups": 32,
}


def full_size_shapes(transformer_config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Original names -> shapes, as a full-size file's header lists them: the transformer and
    VAE built on the meta device, so no memory and no values."""
    modules: dict[Component, nn.Module] = {
        "unet": cast(nn.Module, empty_transformer(transformer_config)),
        "vae": cast(nn.Module, empty_vae(SD3_FULL_VAE)),
    }
    states = {name: module.state_dict() for name, module in modules.items()}
    layout = original_layout(modules, transformer_config["num_layers"], SD3_FULL_VAE)
    return {
        item.name: tuple(to_original_layout(item, [states[c][k] for c, k in item.parts]).shape)
        for item in layout
    }


def write_full_size_sd3(
    out_path: str | Path,
    transformer_config: Mapping[str, Any] = SD35_MEDIUM,
    *,
    dtype: torch.dtype = torch.float16,
    seed: int = 0,
) -> Path:
    """A full-size-shaped SD 3.5 file (transformer + VAE) of seeded random values, written one
    tensor at a time so writing never holds the model in memory."""
    shapes = full_size_shapes(transformer_config)

    def produce(spec: TensorSpec) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed + len(spec.name))
        values = torch.randn(spec.shape, generator=generator, dtype=torch.float32)
        return (values * 0.02).to(dtype)

    specs = [TensorSpec(name, dtype, shape) for name, shape in shapes.items()]
    write_safetensors(out_path, specs, produce, {"latentloom.random": "sd3"})
    return Path(out_path)


Producer = Callable[[TensorSpec], torch.Tensor]
