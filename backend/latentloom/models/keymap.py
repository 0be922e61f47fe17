"""Tensor names: original single-file (LDM / SGM) layout <-> diffusers / transformers layout.

Written as a per-key mapping, not a whole-state-dict conversion, so the loader can stream one
tensor at a time: `KeyMap.to_diffusers(original_key)` says which component the tensor belongs
to, its new name(s) and the few reshapes needed on the way:
- `conv1x1`: the VAE's mid-block attention stores q/k/v/proj_out as 1x1 convs; diffusers uses
  linear layers (drop the trailing 1-dims);
- `split_qkv`: OpenCLIP packs q, k, v into one `in_proj` tensor; transformers has three;
- `transpose`: OpenCLIP's `text_projection` is applied as `x @ P`, transformers' as a Linear;
- `swap_halves`: MMDiT final adaLN modulations are stored (shift, scale), diffusers' (scale, shift).

`KeyMap.to_original(component, diffusers_key)` is the inverse, written independently; the tiny
checkpoint writer uses it, so every tiny round trip tests the two against each other (and the
tests also compare with diffusers' own whole-dict converters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from latentloom.models.family import Family
from latentloom.models.layout import (
    TEXT_TOWERS,
    UNET_PREFIX,
    VAE_PREFIX,
    Component,
    TextComponent,
    TextTower,
)

# "ignore": a tensor the modules do not use; "unknown": a name the mapping cannot place.
Transform = Literal["copy", "conv1x1", "split_qkv", "transpose", "swap_halves", "ignore", "unknown"]


@dataclass(frozen=True)
class Target:
    """Where one original tensor goes; `keys` is empty for tensors deliberately skipped."""

    component: Component
    keys: tuple[str, ...]
    transform: Transform


@dataclass(frozen=True)
class Source:
    """Where one diffusers tensor comes from: `part` of the original tensor `key`."""

    key: str
    transform: Transform
    part: int = 0


def _invert(table: Mapping[str, str]) -> dict[str, str]:
    return {value: key for key, value in table.items()}


_UNET_FIXED = {
    "time_embed.0": "time_embedding.linear_1",
    "time_embed.2": "time_embedding.linear_2",
    "label_emb.0.0": "add_embedding.linear_1",
    "label_emb.0.2": "add_embedding.linear_2",
    "input_blocks.0.0": "conv_in",
    "out.0": "conv_norm_out",
    "out.2": "conv_out",
}
_UNET_RESNET = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
_VAE_FIXED = {
    "encoder.norm_out": "encoder.conv_norm_out",
    "decoder.norm_out": "decoder.conv_norm_out",
    **{name: name for name in ("quant_conv", "post_quant_conv")},
    **{
        f"{half}.{conv}": f"{half}.{conv}"
        for half in ("encoder", "decoder")
        for conv in ("conv_in", "conv_out")
    },
}
_VAE_RESNET = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "nin_shortcut": "conv_shortcut",
}
_VAE_ATTENTION = {
    "norm": "group_norm",
    "q": "to_q",
    "k": "to_k",
    "v": "to_v",
    "proj_out": "to_out.0",
}
_VAE_MID = {"block_1": "resnets.0", "block_2": "resnets.1", "attn_1": "attentions.0"}
_OPEN_CLIP_FIXED = {
    "token_embedding.weight": "embeddings.token_embedding.weight",
    "positional_embedding": "embeddings.position_embedding.weight",
    "ln_final.weight": "final_layer_norm.weight",
    "ln_final.bias": "final_layer_norm.bias",
}
_OPEN_CLIP_LAYER = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
    "attn.out_proj": "self_attn.out_proj",
}
_OPEN_CLIP_IGNORED = frozenset({"logit_scale", "attn_mask"})
_QKV = ("q_proj", "k_proj", "v_proj")

# The same tables read backwards, for `to_original`.
_UNET_FIXED_BACK = _invert(_UNET_FIXED)
_UNET_RESNET_BACK = _invert(_UNET_RESNET)
_VAE_FIXED_BACK = _invert(_VAE_FIXED)
_VAE_RESNET_BACK = _invert(_VAE_RESNET)
_VAE_ATTENTION_BACK = _invert(_VAE_ATTENTION)
_VAE_MID_BACK = _invert(_VAE_MID)
_OPEN_CLIP_FIXED_BACK = _invert(_OPEN_CLIP_FIXED)
_OPEN_CLIP_LAYER_BACK = _invert(_OPEN_CLIP_LAYER)


def _rename_module(rest: str, table: Mapping[str, str]) -> str | None:
    """`module.param` with `module` renamed by `table`, or None when it is not in the table."""
    module, _, param = rest.rpartition(".")
    renamed = table.get(module)
    return f"{renamed}.{param}" if renamed is not None else None


def _split_index(rest: str, head: str) -> tuple[int, str, str] | None:
    """`head.N.S.tail` -> (N, S, tail) with N numeric, else None."""
    parts = rest.split(".", 3)
    if len(parts) < 4 or parts[0] != head or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


class KeyMap:
    """The name mapping for one checkpoint's structure (levels and layers change indices)."""

    def __init__(
        self,
        family: Family,
        unet_config: Mapping[str, Any],
        vae_config: Mapping[str, Any],
        text_roots: Mapping[TextComponent, str],
        towers: tuple[TextTower, ...] | None = None,  # the family's unless given (SDXL refiner)
    ) -> None:
        self.per_level: int = unet_config["layers_per_block"]
        self.up_attention = [name.startswith("CrossAttn") for name in unet_config["up_block_types"]]
        self.vae_levels = len(vae_config["block_out_channels"])
        self.towers: tuple[TextTower, ...] = TEXT_TOWERS[family.name]
        if towers is not None:
            self.towers = towers
        # Module-side prefix of each text tower: "" for transformers 5's CLIPTextModel,
        # "text_model." for CLIPTextModelWithProjection (and CLIPTextModel in transformers 4).
        self.text_roots = dict(text_roots)

    # --- original -> diffusers -----------------------------------------------------------

    def to_diffusers(self, key: str) -> Target | None:
        """The target of an original tensor; None when no component claims the key at all
        (EMA copies, schedule buffers, training state), which loaders skip."""
        if key.startswith(UNET_PREFIX):
            return _single("unet", self._unet(key[len(UNET_PREFIX) :]))
        if key.startswith(VAE_PREFIX):
            renamed = self._vae(key[len(VAE_PREFIX) :])
            return _single("vae", renamed, _vae_transform(renamed))
        for tower in self.towers:
            if key.startswith(tower.prefix):
                return self._text(tower, key[len(tower.prefix) :])
        return None

    def _unet(self, rest: str) -> str | None:
        fixed = _rename_module(rest, _UNET_FIXED)
        if fixed is not None:
            return fixed
        block = self.per_level + 1
        if (found := _split_index(rest, "input_blocks")) is not None and found[0] > 0:
            level, slot = divmod(found[0] - 1, block)
            return self._unet_block(f"down_blocks.{level}", slot, found[1], found[2], "down")
        if (found := _split_index(rest, "output_blocks")) is not None:
            level, slot = divmod(found[0], block)
            return self._unet_block(f"up_blocks.{level}", slot, found[1], found[2], "up")
        head, _, tail = rest.partition(".")
        index, _, tail = tail.partition(".")
        if head == "middle_block" and index == "1":
            return f"mid_block.attentions.0.{tail}"
        if head == "middle_block" and index in ("0", "2"):
            resnet = _rename_module(tail, _UNET_RESNET)
            return f"mid_block.resnets.{int(index) // 2}.{resnet}" if resnet else None
        return None

    def _unet_block(
        self, block: str, slot: int, sub: str, tail: str, direction: Literal["down", "up"]
    ) -> str | None:
        if direction == "down" and slot == self.per_level:
            param = tail.removeprefix("op.")
            return f"{block}.downsamplers.0.conv.{param}" if sub == "0" and param != tail else None
        if direction == "up" and sub in ("1", "2") and tail.startswith("conv."):
            return f"{block}.upsamplers.0.{tail}"
        if sub == "0":
            resnet = _rename_module(tail, _UNET_RESNET)
            return f"{block}.resnets.{slot}.{resnet}" if resnet else None
        return f"{block}.attentions.{slot}.{tail}" if sub == "1" else None

    def _vae(self, rest: str) -> str | None:
        fixed = _rename_module(rest, _VAE_FIXED)
        if fixed is not None:
            return fixed
        half, _, inner = rest.partition(".")
        parts = inner.split(".")
        if parts[0] == "mid" and len(parts) == 4 and parts[1] in _VAE_MID:
            table = _VAE_ATTENTION if parts[1] == "attn_1" else _VAE_RESNET
            renamed = _rename_module(".".join(parts[2:]), table)
            return f"{half}.mid_block.{_VAE_MID[parts[1]]}.{renamed}" if renamed else None
        if len(parts) < 5 or not parts[1].isdigit():
            return None
        kind = {("encoder", "down"): "down", ("decoder", "up"): "up"}.get((half, parts[0]))
        if kind is None:
            return None
        level = int(parts[1]) if kind == "down" else self.vae_levels - 1 - int(parts[1])
        block = f"{half}.{kind}_blocks.{level}"
        if parts[2] in ("downsample", "upsample") and parts[3] == "conv":
            return f"{block}.{kind}samplers.0.conv.{'.'.join(parts[4:])}"
        if parts[2] == "block" and parts[3].isdigit():
            renamed = _rename_module(".".join(parts[4:]), _VAE_RESNET)
            return f"{block}.resnets.{parts[3]}.{renamed}" if renamed else None
        return None

    def _text(self, tower: TextTower, rest: str) -> Target:
        root = self.text_roots[tower.component]
        if tower.layout == "hf_clip":
            rest = rest.removeprefix("text_model.")
            if rest == "embeddings.position_ids":  # a constant buffer some files carry
                return Target(tower.component, (), "ignore")
            return Target(tower.component, (root + rest,), "copy")
        return self._open_clip(tower, root, rest)

    def _open_clip(self, tower: TextTower, root: str, rest: str) -> Target:
        component = tower.component
        if rest in _OPEN_CLIP_FIXED:
            return Target(component, (root + _OPEN_CLIP_FIXED[rest],), "copy")
        if rest in _OPEN_CLIP_IGNORED or (rest == "text_projection" and not tower.with_projection):
            return Target(component, (), "ignore")
        if rest == "text_projection":
            return Target(component, ("text_projection.weight",), "transpose")
        parts = rest.split(".", 3)  # transformer.resblocks.N.tail
        if len(parts) < 4 or parts[:2] != ["transformer", "resblocks"] or not parts[2].isdigit():
            return _single(component, None)
        prefix = f"{root}encoder.layers.{parts[2]}."
        tail = parts[3]
        if tail in ("attn.in_proj_weight", "attn.in_proj_bias"):
            param = "weight" if tail.endswith("weight") else "bias"
            keys = tuple(f"{prefix}self_attn.{name}.{param}" for name in _QKV)
            return Target(component, keys, "split_qkv")
        renamed = _rename_module(tail, _OPEN_CLIP_LAYER)
        return _single(component, prefix + renamed if renamed else None)

    # --- diffusers -> original (for writers) ---------------------------------------------

    def to_original(self, component: Component, key: str) -> Source:
        """The original tensor a diffusers tensor comes from; raises on names it cannot place."""
        if component == "unet":
            return Source(UNET_PREFIX + self._unet_original(key), "copy")
        if component == "vae":
            return Source(VAE_PREFIX + self._vae_original(key), _vae_transform(key))
        tower = next(tower for tower in self.towers if tower.component == component)
        return self._text_original(tower, key)

    def _unet_original(self, key: str) -> str:
        fixed = _rename_module(key, _UNET_FIXED_BACK)
        if fixed is not None:
            return fixed
        parts = key.split(".")
        block, level = parts[0], int(parts[1]) if parts[1].isdigit() else -1
        if block == "mid_block":
            tail = ".".join(parts[3:])
            if parts[1] == "attentions":
                return f"middle_block.1.{tail}"
            return f"middle_block.{2 * int(parts[2])}.{_must(tail, _UNET_RESNET_BACK, key)}"
        kind, slot, tail = parts[2], int(parts[3]), ".".join(parts[4:])
        base = level * (self.per_level + 1)
        if block == "down_blocks":
            if kind == "downsamplers":
                return f"input_blocks.{base + self.per_level + 1}.0.op.{parts[-1]}"
            number = base + slot + 1
        elif block == "up_blocks":
            if kind == "upsamplers":
                sub = 2 if self.up_attention[level] else 1
                return f"output_blocks.{base + self.per_level}.{sub}.{tail}"
            number = base + slot
        else:
            raise ValueError(f"no original name for UNet tensor '{key}'")
        head = "input_blocks" if block == "down_blocks" else "output_blocks"
        if kind == "resnets":
            return f"{head}.{number}.0.{_must(tail, _UNET_RESNET_BACK, key)}"
        return f"{head}.{number}.1.{tail}"

    def _vae_original(self, key: str) -> str:
        fixed = _rename_module(key, _VAE_FIXED_BACK)
        if fixed is not None:
            return fixed
        half, block, *rest = key.split(".")
        if block == "mid_block":
            mid = _VAE_MID_BACK[f"{rest[0]}.{rest[1]}"]
            table = _VAE_ATTENTION_BACK if mid == "attn_1" else _VAE_RESNET_BACK
            return f"{half}.mid.{mid}.{_must('.'.join(rest[2:]), table, key)}"
        kind = block.removesuffix("_blocks")
        level = int(rest[0]) if kind == "down" else self.vae_levels - 1 - int(rest[0])
        if rest[1] in ("downsamplers", "upsamplers"):
            return f"{half}.{kind}.{level}.{kind}sample.{'.'.join(rest[3:])}"
        renamed = _must(".".join(rest[3:]), _VAE_RESNET_BACK, key)
        return f"{half}.{kind}.{level}.block.{rest[2]}.{renamed}"

    def _text_original(self, tower: TextTower, key: str) -> Source:
        if key == "text_projection.weight":
            return Source(tower.prefix + "text_projection", "transpose")
        rest = key.removeprefix(self.text_roots[tower.component])
        if tower.layout == "hf_clip":
            return Source(f"{tower.prefix}text_model.{rest}", "copy")
        fixed = _OPEN_CLIP_FIXED_BACK.get(rest)
        if fixed is not None:
            return Source(tower.prefix + fixed, "copy")
        parts = rest.split(".")  # encoder.layers.N.module....param
        prefix = f"{tower.prefix}transformer.resblocks.{parts[2]}."
        tail = ".".join(parts[3:])
        if parts[3] == "self_attn" and parts[4] in _QKV:
            return Source(f"{prefix}attn.in_proj_{parts[5]}", "split_qkv", _QKV.index(parts[4]))
        return Source(prefix + _must(tail, _OPEN_CLIP_LAYER_BACK, key), "copy")


def _vae_transform(name: str | None) -> Transform:
    """The VAE attention's q/k/v/out weights are 1x1 convs in the original layout."""
    linear = name is not None and ".attentions.0.to_" in name and name.endswith(".weight")
    return "conv1x1" if linear else "copy"


def _single(component: Component, key: str | None, transform: Transform = "copy") -> Target:
    if key is None:
        return Target(component, (), "unknown")
    return Target(component, (key,), transform)


def _must(rest: str, table: Mapping[str, str], key: str) -> str:
    renamed = _rename_module(rest, table)
    if renamed is None:
        raise ValueError(f"no original name for '{key}'")
    return renamed
