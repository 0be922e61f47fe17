"""Construct the diffusers / transformers modules of a checkpoint without allocating weights.

Under `torch.device("meta")` every parameter is a shape with no storage and initialisation is
skipped in effect, so building a full-size SD model costs milliseconds and no memory; the
streaming loader (`streaming.py`) then assigns the real tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from latentloom.models.configs import ModelConfigs
from latentloom.models.layout import Component, TextComponent

TextModel = CLIPTextModel | CLIPTextModelWithProjection


@dataclass(frozen=True)
class Modules:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text: tuple[tuple[TextComponent, TextModel], ...]

    def text_roots(self) -> dict[TextComponent, str]:
        return {component: text_root(model) for component, model in self.text}

    def components(self) -> dict[Component, nn.Module]:
        """Every module by component name (diffusers' classes are nn.Modules underneath)."""
        components: dict[Component, nn.Module] = {
            "unet": cast(nn.Module, self.unet),
            "vae": cast(nn.Module, self.vae),
        }
        components.update(dict(self.text))
        return components

    def config_of(self, component: Literal["unet", "vae"]) -> dict[str, Any]:
        module = self.unet if component == "unet" else self.vae
        return dict(module.config)  # type: ignore[union-attr]


def text_root(module: nn.Module) -> str:
    """Where the CLIP tower's names start inside a transformers model ("" or "text_model.").

    transformers 5's CLIPTextModel *is* the tower; CLIPTextModelWithProjection (and
    CLIPTextModel in transformers 4) wrap it as `text_model`.
    """
    return "text_model." if hasattr(module, "text_model") else ""


def empty_unet(config: Mapping[str, Any]) -> UNet2DConditionModel:
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(dict(config))  # type: ignore[no-any-return]


def empty_vae(config: Mapping[str, Any]) -> AutoencoderKL:
    with torch.device("meta"):
        return AutoencoderKL.from_config(dict(config))  # type: ignore[no-any-return]


def text_model(config: CLIPTextConfig, with_projection: bool) -> TextModel:
    """A text tower; SDXL's bigG carries a projection for its pooled output."""
    if with_projection:
        return CLIPTextModelWithProjection(config)
    return CLIPTextModel(config)


def empty_text_model(config: CLIPTextConfig, with_projection: bool) -> TextModel:
    with torch.device("meta"):
        return text_model(config, with_projection)


def empty_modules(configs: ModelConfigs) -> Modules:
    return Modules(
        unet=empty_unet(configs.unet),
        vae=empty_vae(configs.vae),
        text=tuple(
            (item.tower.component, empty_text_model(item.config, item.tower.with_projection))
            for item in configs.text_encoders
        ),
    )
