"""Random-weight checkpoints in the real single-file layout: tiny ones for tests, and full-size
SD 1.5- and SD 2.x-shaped ones for memory and speed benchmarks and full-size detection.

Tiny models keep each family's real structure in miniature: UNet levels with and without
attention, a VAE with four levels (a true 8x downscale) and 4 latent channels, CLIP towers
with the real 49,408-token vocabulary and 77 positions, and for SDXL both towers, the pooled
projection and the `text_time` extra conditioning. Weights are the libraries' default
initialisation (numerically sane: nothing is NaN or explodes), rounded to the storage dtype so
that loading the file back reproduces the modules exactly. The same seed gives the same bytes.

The widths obey the rules that `configs.py` uses to recover what shapes cannot show (heads,
GroupNorm groups), so a tiny file loads back into exactly the modules it was written from.

SD 2.x v-prediction files carry the tell-tale that detection reads from the weights (`detect.py`:
the last output transformer's norm bias, spread wide as 768-v training leaves it), so a file
written without the `v_pred` marker (`v_marker=False`, as Stability published 768-v) is still
detected as v; epsilon files keep that bias at its initial zeros.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextConfig

from latentloom.models.build import Modules, TextModel, empty_modules, text_model
from latentloom.models.configs import ModelConfigs, TextEncoderConfig
from latentloom.models.export import write_original_checkpoint
from latentloom.models.family import FAMILIES, FamilyName
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import (
    END_OF_TEXT_ID,
    START_OF_TEXT_ID,
    TEXT_TOWERS,
    Component,
    TextComponent,
    TextTower,
)
from latentloom.models.tiny_kinds import TINY_KINDS, UNET_FAMILIES

# Unbound: mypy does not see diffusers' models as nn.Modules.
ModuleT = TypeVar("ModuleT")

TINY_METADATA_KEY = "latentloom.tiny"
V_PRED_MARKER = "v_pred"
_CLIP_VOCAB = 49_408
_CLIP_POSITIONS = 77
TINY_TEXT_WIDTH = 32
SDXL_TINY_TIME_DIM = 8
V_TELL_TALE_SPREAD = 0.25  # detect.py calls a spread above 0.09 v-prediction
INPAINT_IN_CHANNELS = 9  # latent 4 + mask 1 + masked-image latent 4


def _pixel_size(family: FamilyName, v_prediction: bool) -> int:
    if family == "sdxl":
        return 1024
    return 768 if family == "sd2" and v_prediction else 512


def tiny_unet_config(
    family: FamilyName, v_prediction: bool = False, inpaint: bool = False
) -> dict[str, Any]:
    """Two levels (three for SDXL, as the real one), attention only below full resolution.

    An inpainting UNet reads 9 channels: the latent's 4, the mask, the masked image's latent."""
    sdxl = family == "sdxl"
    channels = [32, 64, 64] if sdxl else [32, 64]
    down = ["DownBlock2D", *["CrossAttnDownBlock2D"] * (len(channels) - 1)]
    config: dict[str, Any] = {
        "sample_size": _pixel_size(family, v_prediction) // 8,
        "in_channels": INPAINT_IN_CHANNELS if inpaint else 4,
        "out_channels": 4,
        "down_block_types": down,
        "up_block_types": [name.replace("Down", "Up") for name in reversed(down)],
        "block_out_channels": channels,
        "layers_per_block": 1,
        "cross_attention_dim": TINY_TEXT_WIDTH * len(TEXT_TOWERS[family]),
        # SD 1.x: 8 heads everywhere; others: 64-wide heads, one head below width 64.
        "attention_head_dim": 8 if family == "sd15" else [1] * len(channels),
        "use_linear_projection": family != "sd15",
        "transformer_layers_per_block": [1, 1, 2] if sdxl else 1,
        "norm_num_groups": 32,
        "upcast_attention": family == "sd2" and v_prediction,
    }
    if sdxl:
        config.update(
            addition_embed_type="text_time",
            addition_time_embed_dim=SDXL_TINY_TIME_DIM,
            projection_class_embeddings_input_dim=TINY_TEXT_WIDTH + 6 * SDXL_TINY_TIME_DIM,
        )
    return config


def tiny_vae_config(family: FamilyName, v_prediction: bool = False) -> dict[str, Any]:
    """Four levels for the real 8x downscale; widths divisible by 8 GroupNorm groups."""
    return {
        "sample_size": _pixel_size(family, v_prediction),
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [8, 16, 32, 32],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 8,
        "scaling_factor": FAMILIES[family].vae_scaling_factor,
    }


def tiny_clip_config(tower: TextTower) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=_CLIP_VOCAB,
        hidden_size=TINY_TEXT_WIDTH,
        intermediate_size=4 * TINY_TEXT_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=1,  # 64-wide heads; a width below 64 gets one
        max_position_embeddings=_CLIP_POSITIONS,
        hidden_act="quick_gelu" if tower.layout == "hf_clip" else "gelu",
        projection_dim=TINY_TEXT_WIDTH,
        layer_norm_eps=1e-5,
        bos_token_id=START_OF_TEXT_ID,
        eos_token_id=END_OF_TEXT_ID,
        pad_token_id=tower.pad_token_id,
    )


def tiny_configs(
    family: FamilyName, v_prediction: bool = False, inpaint: bool = False
) -> ModelConfigs:
    return ModelConfigs(
        unet=tiny_unet_config(family, v_prediction, inpaint),
        vae=tiny_vae_config(family, v_prediction),
        text_encoders=tuple(
            TextEncoderConfig(tower, tiny_clip_config(tower)) for tower in TEXT_TOWERS[family]
        ),
    )


def _seeded(seed: int, build: Callable[[], ModuleT]) -> ModuleT:
    """Build under a private RNG state so callers' global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _round_to(module: ModuleT, dtype: torch.dtype) -> ModuleT:
    """Make every weight exactly representable in the storage dtype; freeze for inference."""
    torch_module = cast(nn.Module, module)
    with torch.no_grad():
        for tensor in torch_module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(dtype).to(tensor.dtype))
    torch_module.eval().requires_grad_(False)
    return module


def v_tell_tale(unet: Any) -> torch.Tensor:
    """The norm bias `detect.py` reads: first transformer of the last attention up block."""
    last = [block for block in unet.up_blocks if hasattr(block, "attentions")][-1]
    return cast(torch.Tensor, last.attentions[-1].transformer_blocks[0].norm1.bias)


def v_tell_tale_values(width: int, seed: int) -> torch.Tensor:
    """Seeded values spread as a 768-v model's tell-tale bias (see `detect.py`)."""
    generator = torch.Generator().manual_seed(seed * 16 + 15)
    return torch.randn(width, generator=generator) * V_TELL_TALE_SPREAD


def tiny_modules(
    family: FamilyName,
    *,
    seed: int = 0,
    v_prediction: bool = False,
    storage_dtype: torch.dtype = torch.float16,
    inpaint: bool = False,
) -> Modules:
    """The fp32 modules a tiny checkpoint holds (each component seeded on its own)."""
    configs = tiny_configs(family, v_prediction, inpaint)
    text: list[tuple[TextComponent, TextModel]] = []
    for index, item in enumerate(configs.text_encoders):
        build = functools.partial(text_model, item.config, item.tower.with_projection)
        model = _seeded(seed * 16 + 2 + index, build)
        text.append((item.tower.component, _round_to(model, storage_dtype)))
    unet = _seeded(seed * 16, lambda: UNet2DConditionModel(**configs.unet))
    if family == "sd2" and v_prediction:
        bias = v_tell_tale(unet)
        with torch.no_grad():
            bias.copy_(v_tell_tale_values(bias.numel(), seed))
    vae = _seeded(seed * 16 + 1, lambda: AutoencoderKL(**configs.vae))
    return Modules(
        unet=_round_to(unet, storage_dtype),
        vae=_round_to(vae, storage_dtype),
        text=tuple(text),
    )


def keymap_for(family: FamilyName, modules: Modules) -> KeyMap:
    return KeyMap(
        FAMILIES[family],
        modules.config_of("unet"),
        modules.config_of("vae"),
        modules.text_roots(),
    )


def make_tiny_checkpoint(
    family: FamilyName | Literal["sdxl-refiner", "flux-dev", "flux-schnell"],
    out_path: str | Path,
    *,
    seed: int = 0,
    v_prediction: bool = False,
    v_marker: bool = True,
    dtype: torch.dtype = torch.float16,
    inpaint: bool = False,
) -> Path:
    """Write a tiny random checkpoint of `family` in the original single-file layout.

    A v-prediction file carries ComfyUI's `v_pred` marker unless `v_marker` is False; SD 2.x
    ones carry the weight tell-tale either way. `inpaint` makes an inpainting checkpoint (a
    UNet with 9 input channels); the text encoders and VAE are those of the same seed's plain
    checkpoint, as real inpainting models share their base model's.
    """
    if family == "flux-dev" or family == "flux-schnell":  # the transformer (flux_tiny.py)
        from latentloom.models.flux_tiny import make_tiny_flux_transformer
        from latentloom.models.tiny_t5 import TINY_T5

        return make_tiny_flux_transformer(
            out_path,
            "dev" if family == "flux-dev" else "schnell",
            context_width=int(TINY_T5["d_model"]),
            pooled_width=TINY_TEXT_WIDTH,
            seed=seed,
            dtype=dtype,
        )
    if family == "sdxl-refiner":  # not a family: SDXL latents, its own UNet and text layout
        from latentloom.models.refiner_tiny import make_tiny_refiner_checkpoint

        return make_tiny_refiner_checkpoint(out_path, seed=seed, dtype=dtype)
    if family == "sd3":  # an MMDiT, a 16-channel VAE, CLIP-L/G and T5 (sd3_tiny.py)
        from latentloom.models.sd3_tiny import make_tiny_sd3

        return make_tiny_sd3(out_path, seed=seed, dtype=dtype)
    if family not in UNET_FAMILIES:
        raise ValueError(f"family {family!r} is not known; use one of {', '.join(TINY_KINDS)}")
    modules = tiny_modules(
        family, seed=seed, v_prediction=v_prediction, storage_dtype=dtype, inpaint=inpaint
    )
    # ComfyUI's marker for v-prediction models: an empty tensor named `v_pred`.
    extra = {V_PRED_MARKER: torch.zeros(0)} if v_prediction and v_marker else {}
    path = Path(out_path)
    write_original_checkpoint(
        path,
        modules.components(),
        keymap_for(family, modules),
        dtype=dtype,
        extra=extra,
        metadata={
            TINY_METADATA_KEY: family,
            "latentloom.seed": str(seed),
            **({"latentloom.inpaint": "true"} if inpaint else {}),
        },
    )
    return path


# --- full-size SD 1.5 and SD 2.x shapes --------------------------------------------------


def sd15_configs() -> ModelConfigs:
    """The published SD 1.5 structure (diffusers' runwayml config, OpenAI CLIP ViT-L/14)."""
    tower = TEXT_TOWERS["sd15"][0]
    down = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    clip = tiny_clip_config(tower)
    clip.update(
        {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "projection_dim": 768,
        }
    )
    return ModelConfigs(
        unet={
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": down,
            "up_block_types": [name.replace("Down", "Up") for name in reversed(down)],
            "block_out_channels": [320, 640, 1280, 1280],
            "layers_per_block": 2,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "use_linear_projection": False,
            "transformer_layers_per_block": 1,
            "norm_num_groups": 32,
            "upcast_attention": False,
        },
        vae={
            **tiny_vae_config("sd15"),
            "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2,
            "norm_num_groups": 32,
        },
        text_encoders=(TextEncoderConfig(tower, clip),),
    )


@dataclass(frozen=True)
class _RandomWeights:
    """Per-tensor seeded values, so no tensor depends on the order others were made in."""

    seed: int
    states: dict[Component, dict[str, torch.Tensor]]

    def __call__(self, component: Component, key: str) -> torch.Tensor:
        shape = self.states[component][key].shape
        name = f"{component}.{key}"
        generator = torch.Generator().manual_seed(self.seed * 2**32 + zlib.crc32(name.encode()))
        if key.endswith("bias"):
            return torch.zeros(shape)
        if len(shape) == 1:  # norm scales
            return torch.ones(shape)
        if "embedding" in key and len(shape) == 2 and "time" not in key:
            return torch.randn(shape, generator=generator) * 0.02
        fan_in = shape[1:].numel()
        return torch.randn(shape, generator=generator) / fan_in**0.5


def make_sd15_checkpoint(out_path: str | Path, *, seed: int = 0) -> Path:
    """A full-size SD 1.5-shaped fp16 checkpoint (~2.1 GB) of random weights, streamed."""
    modules = empty_modules(sd15_configs())
    components = modules.components()
    states = {name: module.state_dict() for name, module in components.items()}
    path = Path(out_path)
    write_original_checkpoint(
        path,
        components,
        keymap_for("sd15", modules),
        dtype=torch.float16,
        fetch=_RandomWeights(seed, states),
        metadata={"latentloom.random": "sd15", "latentloom.seed": str(seed)},
    )
    return path


def sd2_configs(v_prediction: bool = True) -> ModelConfigs:
    """The published SD 2.x structure: stable-diffusion-2-1 (768-v) or 2-1-base (512 epsilon),
    with the full 24-layer OpenCLIP ViT-H text tower."""
    base = sd15_configs()
    tower = TEXT_TOWERS["sd2"][0]
    clip = tiny_clip_config(tower)
    clip.update(
        {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "projection_dim": 1024,
        }
    )
    size = _pixel_size("sd2", v_prediction)
    unet = {
        **base.unet,
        "sample_size": size // 8,
        "attention_head_dim": [5, 10, 20, 20],
        "cross_attention_dim": 1024,
        "use_linear_projection": True,
        "upcast_attention": v_prediction,
    }
    vae = {**base.vae, "sample_size": size}
    return ModelConfigs(unet=unet, vae=vae, text_encoders=(TextEncoderConfig(tower, clip),))


def make_sd2_checkpoint(out_path: str | Path, *, v_prediction: bool, seed: int = 0) -> Path:
    """A full-size SD 2.x-shaped fp16 checkpoint (~2.6 GB) of random weights, streamed.

    Like the files Stability published, it has no `v_pred` marker: a v-prediction file says so
    only through the weight tell-tale (`detect.py`)."""
    modules = empty_modules(sd2_configs(v_prediction))
    components = modules.components()
    states = {name: module.state_dict() for name, module in components.items()}
    random_weights = _RandomWeights(seed, states)
    unet = cast(nn.Module, modules.unet)
    tell_tale = v_tell_tale(unet)
    tell_tale_key = next(k for k, p in unet.named_parameters() if p is tell_tale)

    def fetch(component: Component, key: str) -> torch.Tensor:
        if v_prediction and component == "unet" and key == tell_tale_key:
            return v_tell_tale_values(tell_tale.numel(), seed)
        return random_weights(component, key)

    path = Path(out_path)
    write_original_checkpoint(
        path,
        components,
        keymap_for("sd2", modules),
        dtype=torch.float16,
        fetch=fetch,
        metadata={"latentloom.random": "sd2", "latentloom.seed": str(seed)},
    )
    return path
