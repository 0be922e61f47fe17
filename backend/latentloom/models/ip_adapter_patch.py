"""Apply IP-Adapter: image tokens attended to beside the prompt, as an attention patch.

`apply_ip_adapter` encodes the image with the CLIP vision tower (center crop, as ComfyUI's
IP-Adapter nodes do), projects it to image tokens, and returns a new MODEL handle carrying an
`IpAdapterPatch`; the UNet itself is untouched until sampling installs the patch
(`attention_patching.py`). In every cross-attention layer the patch adds
`weight x attention(query, to_k_ip(tokens), to_v_ip(tokens))` to the text attention before the
output projection, which is diffusers' `IPAdapterAttnProcessor2_0` and ComfyUI's "V only"
scaling.

Rows of the negative prompt get unconditional image tokens, as both reference
implementations do: the projection of zero image embeddings for base adapters, and of a
black image's hidden states for plus and full ones, or the encoding of a given negative
image (IPAdapter Advanced's image_negative). Several images are concatenated along the tokens
(ComfyUI's "concat"; diffusers' several images per adapter) or combined into one before the
projection (add, subtract, average, norm average: `combine_embeddings`). The patch applies
while `sigma_end <= sigma <= sigma_start`, the sigmas at `start_at` and `end_at` of the
model's schedule, converted as conditioning timestep ranges are (`regions.percent_to_sigma`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentloom.models.attention_patching import UnetCall, cross_attention_names
from latentloom.models.clip_vision import ClipVision, ClipVisionOutput, encode_image
from latentloom.models.handles import DiffusionModel
from latentloom.models.ip_adapter import IpAdapter, project

UNCOND_IMAGE_SIDE = 224  # the black image the unconditional hidden states come from


class IpAdapterMismatchError(ValueError):
    """An IP-Adapter used with a UNet or CLIP vision model it was not made for."""


@dataclass(frozen=True, eq=False)
class IpAdapterPatch:
    """An IP-Adapter with its image tokens, weight and sigma range: an AttentionPatch."""

    adapter: IpAdapter
    cond: Tensor  # [1, tokens, cross dim]
    uncond: Tensor  # [1, tokens, cross dim]
    weight: float
    sigma_start: float
    sigma_end: float

    @property
    def layer_count(self) -> int:
        return self.adapter.layer_count

    def active(self, call: UnetCall) -> bool:
        return self.weight != 0.0 and self.sigma_end <= call.sigma <= self.sigma_start

    def attend(self, layer: int, attn: Any, query: Tensor, call: UnetCall) -> Tensor:
        batch, heads, _, head_dim = query.shape
        # Outside a denoiser's call (rows unknown) every row is treated as conditional.
        rows = call.uncond_rows if len(call.uncond_rows) == batch else (False,) * batch
        to_k = cast(nn.Linear, self.adapter.to_k[layer])
        to_v = cast(nn.Linear, self.adapter.to_v[layer])
        tokens = torch.cat([self.uncond if row else self.cond for row in rows])
        tokens = tokens.to(query.device, to_k.weight.dtype)
        key = to_k(tokens).view(batch, -1, heads, head_dim).transpose(1, 2)
        value = to_v(tokens).view(batch, -1, heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False
        )
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
        return self.weight * out


def image_tokens(
    adapter: IpAdapter,
    clip_vision: ClipVision,
    images: Tensor,
    negative: Tensor | None = None,
    combine: str = "concat",
) -> tuple[Tensor, Tensor]:
    """(cond, uncond) image tokens, [1, images x tokens, cross dim] each, for IMAGE `images`.

    `negative`: images whose encoding the negative rows get instead of the black image / zero
    embeddings (its first image). `combine`: how several images make one (COMBINE_EMBEDS).
    """
    encoded = encode_image(clip_vision, images, "center")
    cond_embeds = combine_embeddings(clip_embeddings(adapter, encoded, clip_vision), combine)
    if negative is not None:
        encoded_negative = encode_image(clip_vision, negative[:1], "center")
        uncond_embeds = clip_embeddings(adapter, encoded_negative, clip_vision)
    elif adapter.reads_hidden_states:
        black = torch.zeros(1, UNCOND_IMAGE_SIDE, UNCOND_IMAGE_SIDE, 3)
        uncond_embeds = clip_embeddings(adapter, encode_image(clip_vision, black), clip_vision)
    else:
        uncond_embeds = torch.zeros_like(cond_embeds[:1])
    cond = project(adapter, cond_embeds)
    uncond = project(adapter, uncond_embeds)
    cond = cond.reshape(1, -1, cond.shape[-1])
    # Repeating the unconditional tokens to the same count leaves its attention unchanged.
    uncond = uncond[:1].repeat(1, cond.shape[1] // uncond.shape[1], 1)
    return cond, uncond


COMBINE_EMBEDS = ("concat", "add", "subtract", "average", "norm average")


def combine_embeddings(embeds: Tensor, combine: str) -> Tensor:
    """Several images' CLIP embeddings as ComfyUI_IPAdapter_plus's combine_embeds makes them:
    kept side by side (concat), summed, the first minus the mean of the others, averaged, or
    averaged after dividing each feature by its norm over the images. One image: unchanged."""
    if combine not in COMBINE_EMBEDS:
        raise ValueError(f"combine_embeds {combine!r} is not one of: {', '.join(COMBINE_EMBEDS)}")
    if embeds.shape[0] == 1 or combine == "concat":
        return embeds
    if combine == "add":
        return embeds.sum(dim=0, keepdim=True)
    if combine == "subtract":
        return embeds[:1] - embeds[1:].mean(dim=0, keepdim=True)
    if combine == "average":
        return embeds.mean(dim=0, keepdim=True)
    return (embeds / embeds.norm(dim=0, keepdim=True)).mean(dim=0, keepdim=True)


def clip_embeddings(adapter: IpAdapter, encoded: ClipVisionOutput, clip: ClipVision) -> Tensor:
    """What the adapter reads from CLIP Vision Encode's output, checked against its width."""
    embeds = (
        encoded.penultimate_hidden_states if adapter.reads_hidden_states else encoded.image_embeds
    )
    if embeds.shape[-1] != adapter.image_embed_dim:
        what = "hidden states" if adapter.reads_hidden_states else "image embeddings"
        raise IpAdapterMismatchError(
            f"{adapter.source} reads CLIP vision {what} {adapter.image_embed_dim} wide, but "
            f"{clip.source} ({clip.name}) gives {embeds.shape[-1]}: use the CLIP vision model "
            f"the adapter was trained with (ViT-H/14 for most, ViT-bigG/14 for ip-adapter_sdxl)"
        )
    return embeds


def check_fits(adapter: IpAdapter, model: DiffusionModel) -> None:
    """Refuse an adapter made for another UNet, naming what differs."""
    unet = cast(Any, model.unet)
    names = cross_attention_names(cast(nn.Module, unet))
    context = int(unet.config.cross_attention_dim)
    if adapter.layer_count != len(names) or adapter.cross_attention_dim != context:
        raise IpAdapterMismatchError(
            f"{adapter.source} was made for a UNet with {adapter.layer_count} cross-attention "
            f"layers of text width {adapter.cross_attention_dim}; {model.source} "
            f"({model.family.display_name}) has {len(names)} of width {context}: use an "
            f"IP-Adapter for {model.family.display_name}"
        )
    modules = dict(cast(nn.Module, unet).named_modules())
    for index, name in enumerate(names):
        width = modules[name.removesuffix(".processor")].to_q.out_features
        if cast(nn.Linear, adapter.to_k[index]).out_features != width:
            raise IpAdapterMismatchError(
                f"{adapter.source}: layer {2 * index + 1} is "
                f"{cast(nn.Linear, adapter.to_k[index]).out_features} wide, the UNet's {name} "
                f"{width}; use an IP-Adapter for {model.family.display_name}"
            )


def apply_ip_adapter(
    model: DiffusionModel,
    adapter: IpAdapter,
    clip_vision: ClipVision,
    images: Tensor,
    weight: float,
    start_at: float = 0.0,
    end_at: float = 1.0,
    *,
    negative: Tensor | None = None,
    combine: str = "concat",
) -> DiffusionModel:
    """A new MODEL handle that attends to `images` through `adapter` while sampling."""
    from latentloom.sampling.discrete import DiscreteSchedule
    from latentloom.sampling.regions import percent_to_sigma

    if not 0.0 <= start_at <= end_at <= 1.0:
        raise ValueError(f"start_at and end_at must satisfy 0 <= {start_at} <= {end_at} <= 1")
    check_fits(adapter, model)
    cond, uncond = image_tokens(adapter, clip_vision, images, negative, combine)
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    patch = IpAdapterPatch(
        adapter,
        cond,
        uncond,
        float(weight),
        percent_to_sigma(schedule, start_at),
        percent_to_sigma(schedule, end_at),
    )
    return dataclasses.replace(model, attention_patches=(*model.attention_patches, patch))
