"""FLUX.1 transformers in Black Forest Labs' original layout: detection, config, key map.

The original file (`flux1-dev.safetensors`, `flux1-schnell.safetensors`, or the
`model.diffusion_model.` part of an all-in-one checkpoint) names its tensors `img_in`, `txt_in`,
`time_in`, `vector_in`, `guidance_in` (dev only: the guidance-distilled model embeds its
guidance scale), `double_blocks.N.*`, `single_blocks.N.*` and `final_layer.*`. Diffusers'
`FluxTransformer2DModel` holds the same numbers under other names, with three differences in
shape that the map below records as row slices of one original tensor:
- a double block's fused `img_attn.qkv` / `txt_attn.qkv` is three projections (q, k, v);
- a single block's `linear1` is q, k, v and the MLP's input projection (4 x hidden rows);
- the final AdaLN modulation stores (shift, scale) where diffusers expects (scale, shift).

diffusers ships `convert_flux_transformer_checkpoint_to_diffusers`, but it assumes the full
3072-wide model and converts a whole state dict in memory; the map here is a table over any
width, so tensors can stream one at a time into meta-built modules (`flux_load.py`) and a
mismatch is reported by name before anything is read.

Everything a config needs is in the shapes: hidden size (`img_in` rows), head width (the q-norm
scale), depth (block counts), text width (`txt_in` columns), pooled width (`vector_in`
columns), guidance embedder (present or not). Rotary axes: the published model splits its
128-wide heads (16, 56, 56); other head widths keep that proportion (`rope_axes`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentloom.models.errors import UnrecognizedCheckpointError

FLUX_PREFIX = "model.diffusion_model."
FLUX_TELL_TALES = ("double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight")
FLUX_MLP_RATIO = 4  # diffusers' blocks fix the MLP at 4 x hidden, as every FLUX.1 release has


@dataclass(frozen=True)
class FluxTarget:
    """Where one original tensor goes: diffusers `keys`, each taking `rows` rows in order
    (None: the whole tensor); `swap` exchanges the two halves first (shift/scale order)."""

    keys: tuple[str, ...]
    rows: tuple[int, ...] | None = None
    swap: bool = False


def flux_prefix(keys: Collection[str]) -> str | None:
    """The prefix before the transformer's names ("" or `model.diffusion_model.`), or None
    when the keys hold no FLUX transformer."""
    for prefix in ("", FLUX_PREFIX):
        if all(prefix + key in keys for key in FLUX_TELL_TALES):
            return prefix
    return None


def _count(shapes: Mapping[str, tuple[int, ...]], head: str) -> int:
    found = {key.split(".", 2)[1] for key in shapes if key.startswith(head + ".")}
    return len([index for index in found if index.isdigit()])


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """Rotary widths per position axis (index, row, column): (16, 56, 56) for 128-wide heads,
    the same one-eighth / even split for others; every part must be even (pairs rotate)."""
    first = 2 * round(head_dim / 16)
    rest = (head_dim - first) // 2
    if first <= 0 or rest <= 0 or rest % 2 or first + 2 * rest != head_dim:
        raise ValueError(f"a head width of {head_dim} has no even rotary split")
    return (first, rest, rest)


def flux_config(shapes: Mapping[str, tuple[int, ...]], path: str | Path) -> dict[str, Any]:
    """`FluxTransformer2DModel` config from the shapes of un-prefixed original names."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise UnrecognizedCheckpointError(
                path, f"a FLUX transformer without '{key}'", "The file may be truncated"
            )
        return shapes[key]

    hidden, in_channels = shape("img_in.weight")
    head_dim = shape("double_blocks.0.img_attn.norm.query_norm.scale")[0]
    mlp = shape("double_blocks.0.img_mlp.0.weight")[0]
    if hidden % head_dim or mlp != FLUX_MLP_RATIO * hidden:
        raise UnrecognizedCheckpointError(
            path,
            f"a FLUX transformer {hidden} wide with {head_dim}-wide heads and a {mlp}-wide MLP; "
            f"FLUX.1 has whole heads and an MLP {FLUX_MLP_RATIO} x its width",
        )
    try:
        axes = rope_axes(head_dim)
    except ValueError as error:
        raise UnrecognizedCheckpointError(path, str(error)) from None
    return {
        "patch_size": 1,  # 2x2 patches are packed into channels outside (flux_call.py)
        "in_channels": in_channels,
        "out_channels": shape("final_layer.linear.weight")[0],
        "num_layers": _count(shapes, "double_blocks"),
        "num_single_layers": _count(shapes, "single_blocks"),
        "attention_head_dim": head_dim,
        "num_attention_heads": hidden // head_dim,
        "joint_attention_dim": shape("txt_in.weight")[1],
        "pooled_projection_dim": shape("vector_in.in_layer.weight")[1],
        "guidance_embeds": "guidance_in.in_layer.weight" in shapes,
        "axes_dims_rope": axes,
    }


_EMBEDDERS = {
    "time_in": "time_text_embed.timestep_embedder",
    "vector_in": "time_text_embed.text_embedder",
    "guidance_in": "time_text_embed.guidance_embedder",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
}
_SINGLE = {
    "modulation.lin": "norm.linear",
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
    "linear2": "proj_out",
}
_QKV = {
    "img_attn.qkv": ("to_q", "to_k", "to_v"),
    "txt_attn.qkv": ("add_q_proj", "add_k_proj", "add_v_proj"),
}


def _renamed(table: Mapping[str, str], name: str) -> str | None:
    """`name` (e.g. `img_mlp.0.weight`) through a table of module or full names."""
    if name in table:
        return table[name]
    module, _, param = name.rpartition(".")
    return f"{table[module]}.{param}" if module in table else None


def flux_target(name: str, hidden: int) -> FluxTarget | None:
    """The diffusers tensor(s) for un-prefixed original `name`; None when it has none."""
    head, _, rest = name.partition(".")
    module, _, param = rest.rpartition(".")
    if head in _EMBEDDERS:
        layer = {"in_layer": "linear_1", "out_layer": "linear_2"}.get(module)
        return FluxTarget((f"{_EMBEDDERS[head]}.{layer}.{param}",)) if layer else None
    fixed = {"img_in": "x_embedder", "txt_in": "context_embedder"}
    if head in fixed and not module:
        return FluxTarget((f"{fixed[head]}.{param}",))
    if head == "final_layer":
        if module == "linear":
            return FluxTarget((f"proj_out.{param}",))
        if module == "adaLN_modulation.1":
            return FluxTarget((f"norm_out.linear.{param}",), swap=True)
        return None
    index, _, inner = rest.partition(".")
    if head == "double_blocks" and index.isdigit():
        block = f"transformer_blocks.{index}."
        inner_module, _, inner_param = inner.rpartition(".")
        if inner_module in _QKV:
            keys = tuple(f"{block}attn.{part}.{inner_param}" for part in _QKV[inner_module])
            return FluxTarget(keys, (hidden, hidden, hidden))
        renamed = _renamed(_DOUBLE, inner)
        return FluxTarget((block + renamed,)) if renamed else None
    if head == "single_blocks" and index.isdigit():
        block = f"single_transformer_blocks.{index}."
        inner_module, _, inner_param = inner.rpartition(".")
        if inner_module == "linear1":
            parts = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
            rows = (hidden, hidden, hidden, FLUX_MLP_RATIO * hidden)
            return FluxTarget(tuple(f"{block}{part}.{inner_param}" for part in parts), rows)
        renamed = _renamed(_SINGLE, inner)
        return FluxTarget((block + renamed,)) if renamed else None
    return None
