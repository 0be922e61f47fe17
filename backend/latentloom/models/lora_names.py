"""Indexes from the module names LoRA files use to the module names our models have.

LoRA trainers name the layer they adapt after the model *they* trained on:

* kohya-ss writes `lora_unet_<name with "." replaced by "_">`. For SD 1.x/2.x its UNet is
  diffusers', so `<name>` is a diffusers path; for SDXL it trains Stability's (SGM/LDM) UNet,
  so `<name>` is `input_blocks_4_1_transformer_blocks_0_attn1_to_q` and similar.
* diffusers/PEFT write the diffusers path itself, dotted.
* Text encoders are named after transformers' CLIPTextModel as it was before transformers 5,
  `text_model.encoder.layers.0...`. In transformers 5 CLIPTextModel *is* the text transformer
  (`encoder.layers.0...`) while CLIPTextModelWithProjection still wraps one (`text_model.`),
  so we drop a leading `text_model.` on both sides.

Underscored kohya names are mapped by indexing every module name with dots replaced by
underscores, rather than by guessing where the dots were: the model is the source of truth.
SGM aliases are derived from the UNet's actual block structure, not from a fixed table, so any
layers-per-block count works.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

# Inside a ResnetBlock2D: diffusers name -> SGM ResBlock name.
_RESNET_ALIASES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
# Outside the block lists: diffusers name -> SGM name.
_TOP_LEVEL_ALIASES = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def weighted_module_names(module: torch.nn.Module) -> list[str]:
    """Names of submodules that own a `weight` parameter: the layers a LoRA can adapt."""
    return [
        name
        for name, child in module.named_modules()
        if name and isinstance(getattr(child, "weight", None), torch.nn.Parameter)
    ]


def strip_text_model(name: str, separator: str = ".") -> str:
    prefix = f"text_model{separator}"
    return name[len(prefix) :] if name.startswith(prefix) else name


def text_encoder_index(model: torch.nn.Module) -> dict[str, str]:
    """`{name without text_model., dotted or underscored: real module name}` for a CLIP tower."""
    index: dict[str, str] = {}
    for name in weighted_module_names(model):
        short = strip_text_model(name)
        index[short] = name
        index[short.replace(".", "_")] = name
    return index


def unet_index(unet: torch.nn.Module) -> dict[str, str]:
    """`{diffusers or SGM name, dotted or underscored: diffusers module name}` for a UNet."""
    names = weighted_module_names(unet)
    index: dict[str, str] = {}
    for name in names:
        index[name] = name
        index[name.replace(".", "_")] = name
    for alias, name in sgm_aliases(unet, names).items():
        index.setdefault(alias, name)
        index.setdefault(alias.replace(".", "_"), name)
    return index


def sgm_aliases(unet: torch.nn.Module, names: list[str]) -> dict[str, str]:
    """`{SGM module name: diffusers module name}` for every weighted module we can place."""
    blocks = dict(_sgm_block_prefixes(unet))
    aliases: dict[str, str] = {}
    for name in names:
        if name in _TOP_LEVEL_ALIASES:
            aliases[_TOP_LEVEL_ALIASES[name]] = name
            continue
        for diffusers_prefix, sgm_prefix in blocks.items():
            if name == diffusers_prefix:
                aliases[sgm_prefix] = name
                break
            if name.startswith(diffusers_prefix + "."):
                rest = name[len(diffusers_prefix) + 1 :]
                if ".resnets." in diffusers_prefix:
                    rest = _RESNET_ALIASES.get(rest, rest)
                aliases[f"{sgm_prefix}.{rest}"] = name
                break
    return aliases


def _sgm_block_prefixes(unet: torch.nn.Module) -> Iterator[tuple[str, str]]:
    """(diffusers prefix, SGM prefix) pairs, walking the blocks in SGM's numbering order.

    SGM numbers `input_blocks` from 1 (0 is conv_in): each down block contributes one entry per
    resnet (sub-module 0 the resnet, 1 its attention) and one for its downsampler (`op`).
    `output_blocks` number from 0: one entry per resnet, its attention at 1, and the block's
    upsampler after the attention of the last entry.
    """
    number = 1
    for b, block in enumerate(_children(unet, "down_blocks")):
        for j in range(len(_children(block, "resnets"))):
            yield f"down_blocks.{b}.resnets.{j}", f"input_blocks.{number}.0"
            if _children(block, "attentions"):
                yield f"down_blocks.{b}.attentions.{j}", f"input_blocks.{number}.1"
            number += 1
        if _children(block, "downsamplers"):
            yield f"down_blocks.{b}.downsamplers.0.conv", f"input_blocks.{number}.0.op"
            number += 1
    mid = getattr(unet, "mid_block", None)
    if mid is not None:
        yield "mid_block.resnets.0", "middle_block.0"
        if _children(mid, "attentions"):
            yield "mid_block.attentions.0", "middle_block.1"
            yield "mid_block.resnets.1", "middle_block.2"
        else:
            yield "mid_block.resnets.1", "middle_block.1"
    number = 0
    for b, block in enumerate(_children(unet, "up_blocks")):
        resnets = len(_children(block, "resnets"))
        has_attention = bool(_children(block, "attentions"))
        for j in range(resnets):
            yield f"up_blocks.{b}.resnets.{j}", f"output_blocks.{number}.0"
            if has_attention:
                yield f"up_blocks.{b}.attentions.{j}", f"output_blocks.{number}.1"
            if j == resnets - 1 and _children(block, "upsamplers"):
                slot = 2 if has_attention else 1
                yield f"up_blocks.{b}.upsamplers.0.conv", f"output_blocks.{number}.{slot}.conv"
            number += 1


def _children(module: torch.nn.Module, name: str) -> torch.nn.ModuleList:
    children = getattr(module, name, None)
    return children if isinstance(children, torch.nn.ModuleList) else torch.nn.ModuleList()
