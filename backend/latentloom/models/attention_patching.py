"""Attention patches: extra cross-attention (IP-Adapter's image tokens) for the length of a run.

A MODEL handle is frozen and its UNet shared with every other handle and job, so, as with
weight patches (`patching.py`), nothing is baked in: `installed` swaps the UNet's
cross-attention processors (the `attn2` layers, in diffusers' `attn_processors` order) for
`PatchedCrossAttention` on entry and puts the very same original processor objects back on
exit, holding the module's patching lock throughout.

The patched processor computes the text attention exactly as diffusers'
`IPAdapterAttnProcessor2_0` does and adds each active patch's output before the output
projection, so a patched UNet equals diffusers' IP-Adapter UNet. What a patch needs to know
about the call in progress (the sigma, for its start/end range, and which batch rows are the
negative prompt's, which get the unconditional image tokens) comes from `unet_call`, a context
the guided denoiser sets around each UNet call. Where no patch is active (weight 0, outside
its range, or a UNet call outside any `unet_call`, e.g. another thread sharing the module) the
original processor runs, so the result is bit for bit the unpatched one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.models.patching import module_lock

CROSS_ATTENTION_SUFFIX = "attn2.processor"


@dataclass(frozen=True)
class UnetCall:
    """The UNet call in progress: its sigma and, per batch row, whether it is unconditional."""

    sigma: float
    uncond_rows: tuple[bool, ...]


_current: ContextVar[UnetCall | None] = ContextVar("latentloom_unet_call", default=None)


def note_unet_call(sigma: float | Tensor, uncond_rows: Sequence[bool]) -> None:
    """Tell attention patches about the UNet call that follows (the guided denoiser calls this).

    The note lasts until the next one or until `installed` exits; set outside `installed` it
    reaches no patch (a plain UNet has none) and costs a context-variable write.
    """
    _current.set(UnetCall(float(sigma), tuple(bool(row) for row in uncond_rows)))


@contextmanager
def unet_call(sigma: float, uncond_rows: Sequence[bool]) -> Iterator[UnetCall]:
    """`note_unet_call` for the length of a block (for callers that run the UNet themselves)."""
    call = UnetCall(float(sigma), tuple(bool(row) for row in uncond_rows))
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


def current_call() -> UnetCall | None:
    return _current.get()


class AttentionPatch(Protocol):
    """Extra attention added to the UNet's cross-attention layers while sampling."""

    @property
    def layer_count(self) -> int:
        """How many cross-attention layers it has weights for (the UNet's attn2 count)."""
        ...

    def active(self, call: UnetCall) -> bool:
        """Whether it contributes to this call (its weight is non-zero, the sigma in range)."""
        ...

    def attend(self, layer: int, attn: Any, query: Tensor, call: UnetCall) -> Tensor:
        """Its weighted output for cross-attention layer `layer`, [B, L, heads * head_dim],
        given the layer's head-split query [B, heads, L, head_dim]."""
        ...


class AttentionPatchError(ValueError):
    """A patch made for another UNet (a different number of cross-attention layers)."""


def cross_attention_names(unet: torch.nn.Module) -> list[str]:
    """The UNet's cross-attention processor names in diffusers' order (down, up, mid)."""
    processors = cast(dict[str, Any], cast(Any, unet).attn_processors)
    return [name for name in processors if name.endswith(CROSS_ATTENTION_SUFFIX)]


@contextmanager
def installed(
    unet: torch.nn.Module, patches: Sequence[AttentionPatch], source: str = "the model"
) -> Iterator[torch.nn.Module]:
    """Yield `unet` with `patches` in its cross-attention layers; restore its processors on exit."""
    if not patches:
        yield unet
        return
    with module_lock(unet):
        model = cast(Any, unet)
        originals = dict(cast(dict[str, Any], model.attn_processors))
        names = [name for name in originals if name.endswith(CROSS_ATTENTION_SUFFIX)]
        for patch in patches:
            if patch.layer_count != len(names):
                raise AttentionPatchError(
                    f"an attention patch made for a UNet with {patch.layer_count} "
                    f"cross-attention layers cannot apply to {source}, which has {len(names)}: "
                    f"use an adapter made for this model's family"
                )
        layer_of = {name: index for index, name in enumerate(names)}
        replaced = {
            name: (
                PatchedCrossAttention(original, tuple(patches), layer_of[name])
                if name in layer_of
                else original
            )
            for name, original in originals.items()
        }
        model.set_attn_processor(replaced)
        # A fresh scope for call notes: none from before the block, none left after it.
        token = _current.set(None)
        try:
            yield unet
        finally:
            _current.reset(token)
            model.set_attn_processor(dict(originals))


class PatchedCrossAttention:
    """A cross-attention processor that adds active patches' outputs to the text attention."""

    def __init__(self, original: Any, patches: tuple[AttentionPatch, ...], layer: int) -> None:
        self.original = original
        self.patches = patches
        self.layer = layer

    def __call__(
        self,
        attn: Any,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        call = current_call()
        active = [p for p in self.patches if call is not None and p.active(call)]
        if call is None or not active:
            return cast(
                Tensor,
                self.original(
                    attn,
                    hidden_states,
                    encoder_hidden_states,
                    attention_mask,
                    temb,
                    *args,
                    **kwargs,
                ),
            )
        return self._patched(
            attn, hidden_states, encoder_hidden_states, attention_mask, temb, call, active
        )

    def _patched(
        self,
        attn: Any,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None,
        attention_mask: Tensor | None,
        temb: Tensor | None,
        call: UnetCall,
        active: list[AttentionPatch],
    ) -> Tensor:
        # diffusers' attention, step for step, so the result equals its IP-Adapter processor.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch_size, sequence_length, _ = context.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(
                attention_mask, sequence_length, batch_size
            )
            attention_mask = attention_mask.view(
                batch_size, attn.heads, -1, attention_mask.shape[-1]
            )
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
        )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        for patch in active:
            hidden_states = hidden_states + patch.attend(self.layer, attn, query, call)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(
                batch_size, channel, height, width
            )
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return cast(Tensor, hidden_states / attn.rescale_output_factor)
