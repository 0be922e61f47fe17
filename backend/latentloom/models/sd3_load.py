"""Load an SD 3.x single-file checkpoint (ComfyUI / Stability layout) into the link handles.

The file holds the MMDiT under `model.diffusion_model.`, the 16-channel VAE under
`first_stage_model.`, and any of CLIP-L, CLIP-G and T5-XXL under `text_encoders.*` (Stability
ships the 3.5 files without text encoders and users add the separate ones; ComfyUI's
"incl_clips" files hold the two CLIPs; some hold all three). Shapes give every config
(`sd3_config.py`); the transformer, VAE and CLIP towers are built on the meta device, the whole
name mapping (`sd3_keys.py`, `keymap.py`'s VAE half) is rehearsed before a byte is read, and
tensors stream into place one at a time (`streaming.py`), so the peak stays at the loaded
weights. T5 has its own builder (`t5_encoder.py`), which streams the same way.

The model samples as rectified flow with SD 3's shift 3.0 and calls the transformer through
`Sd3Call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from diffusers import AutoencoderKL, SD3Transformer2DModel
from torch import nn

from latentloom.models.build import TextModel, empty_text_model, empty_vae, text_root
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import SD3
from latentloom.models.handles import (
    Checkpoint,
    DiffusionModel,
    T5TextEncoder,
    TextEncoders,
    Vae,
)
from latentloom.models.keymap import KeyMap, Target
from latentloom.models.layout import SD3_T5_PREFIX, UNET_PREFIX, VAE_PREFIX, Component, TextTower
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.schedule import alphas_cumprod
from latentloom.models.sd3_call import Sd3Call
from latentloom.models.sd3_config import (
    describe,
    empty_transformer,
    sd3_clip_config,
    text_towers,
    transformer_config,
    vae_config,
)
from latentloom.models.sd3_keys import Sd3KeyMap, is_sd3, vae_names
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream
from latentloom.models.weight_dtype import WeightStorage

__all__ = ["assemble_sd3", "clip_encoder", "is_sd3", "load_sd3_file", "sd3_diffusion_model"]

SD3_T5_MIN_LENGTH = 77  # ComfyUI pads SD 3's T5 prompt to 77 tokens (FLUX: 256)
_CLIP_IGNORED = frozenset({"logit_scale", "text_model.embeddings.position_ids"})


def _clip_target(tower: TextTower, root: str, rest: str) -> Target:
    if rest in _CLIP_IGNORED:
        return Target(tower.component, (), "ignore")
    if rest == "text_projection.weight":
        return Target(tower.component, (rest,), "copy")
    return Target(tower.component, (root + rest.removeprefix("text_model."),), "copy")


class _Sd3Targets:
    """Original key -> target for every tensor the single file holds (T5 excepted)."""

    def __init__(
        self, transformer: Sd3KeyMap, vae: KeyMap, towers: Mapping[TextTower, str]
    ) -> None:
        self.transformer, self.vae, self.towers = transformer, vae, towers

    def __call__(self, key: str) -> Target | None:
        if key.startswith(UNET_PREFIX):
            return self.transformer.to_diffusers(key[len(UNET_PREFIX) :])
        if key.startswith(VAE_PREFIX):
            return self.vae.to_diffusers(key)
        for tower, root in self.towers.items():
            if key.startswith(tower.prefix):
                return _clip_target(tower, root, key[len(tower.prefix) :])
        return None  # T5 (its own loader) and anything no component claims


def load_sd3_file(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """Every component an SD 3.x single file holds (text encoders as present); `weights`: how
    the transformer and CLIP towers store and compute (`weight_dtype.py`), None: all in `dtype`."""
    with SafetensorsFile(path) as file:
        shapes = file.shapes()
        if not any(key.startswith(VAE_PREFIX) for key in shapes):
            raise UnrecognizedCheckpointError(
                path,
                "an SD 3.x transformer without its VAE (no first_stage_model.* tensors)",
                "A checkpoint must hold the 16-channel VAE too; use a file that includes it "
                "(Stability's sd3.5_*.safetensors do)",
            )
        transformer_cfg = transformer_config(shapes, path)
        vae_cfg = vae_config(shapes, path)
        transformer = empty_transformer(transformer_cfg)
        vae = empty_vae(vae_cfg)
        clips: dict[TextTower, TextModel] = {
            tower: empty_text_model(sd3_clip_config(shapes, tower, path), True)
            for tower in text_towers(shapes)
        }
        components: dict[Component, nn.Module] = {
            "unet": cast(nn.Module, transformer),
            "vae": cast(nn.Module, vae),
        }
        components.update({tower.component: model for tower, model in clips.items()})
        targets = _Sd3Targets(
            Sd3KeyMap(transformer_cfg["num_layers"]),
            vae_names(vae_cfg),
            {tower: text_root(model) for tower, model in clips.items()},
        )
        transfers = [Transfer(file, key, t) for key in file if (t := targets(key)) is not None]
        fillers = {name: ModuleFiller(name, module) for name, module in components.items()}
        rehearse(transfers, fillers, path)
        model_dtype: torch.dtype | WeightStorage = dtype if weights is None else weights
        dtypes = {name: vae_dtype if name == "vae" else model_dtype for name in components}
        stream(transfers, fillers, device, dtypes)
        has_t5 = any(key.startswith(SD3_T5_PREFIX) for key in shapes)
        rule = describe(transformer_cfg, file.metadata)
    encoders: list[Any] = [clip_encoder(model, tower) for tower, model in clips.items()]
    if has_t5:
        encoders.append(_t5_encoder(path, device, dtype))
    return assemble_sd3(transformer, vae, tuple(encoders), str(path), rule)


def clip_encoder(model: TextModel, tower: TextTower) -> Any:
    from latentloom.models.load import _text_encoder

    return _text_encoder(model, tower)


def _t5_encoder(path: Path, device: torch.device, dtype: torch.dtype) -> T5TextEncoder:
    from latentloom.models.t5_encoder import build_t5_encoder
    from latentloom.text.t5_tokenizer import t5_tokenizer

    model = build_t5_encoder(path, SD3_T5_PREFIX, device=device, dtype=dtype)
    return T5TextEncoder(model=model, tokenizer=t5_tokenizer(), min_length=SD3_T5_MIN_LENGTH)


def sd3_diffusion_model(
    transformer: SD3Transformer2DModel, source: str, rule: str
) -> DiffusionModel:
    """The MODEL handle of an SD 3.x transformer: flow sampling with shift 3, the MMDiT call."""
    from latentloom.sampling.model_sampling import sd3_sampling

    return DiffusionModel(
        unet=cast(Any, transformer),  # the field holds any denoising network (handles.py)
        family=SD3,
        prediction_type="epsilon",  # unused: `sampling` decides (rectified flow)
        alphas_cumprod=alphas_cumprod(),
        source=source,
        prediction_rule=rule,
        sampling=sd3_sampling(),
        network_call=Sd3Call(transformer),
    )


def assemble_sd3(
    transformer: SD3Transformer2DModel,
    vae: AutoencoderKL,
    encoders: tuple[Any, ...],
    source: str,
    rule: str,
) -> Checkpoint:
    """The handles of a loaded SD 3.x model: flow sampling with shift 3, the MMDiT call; `rule`
    says which model the shapes match (`sd3_config.describe`), for the node report."""
    model = sd3_diffusion_model(transformer, source, rule)
    return Checkpoint(
        model=model,
        clip=TextEncoders(family=SD3, encoders=encoders, source=source),
        vae=Vae(module=vae, family=SD3, source=source),
    )
