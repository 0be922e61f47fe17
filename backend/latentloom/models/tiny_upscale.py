"""A tiny ESRGAN (RRDBNet) upscaler in the real key layouts, for tests and the demo folder.

Real-ESRGAN's files use the "new" layout (`conv_first`, `body.N.rdbK.convJ`, `conv_body`,
`conv_up1`, `conv_up2`, `conv_hr`, `conv_last`); the original ESRGAN files the "old" one
(`model.0`, `model.1.sub.N.RDBK.convJ.0`, ...). spandrel recognises both from the key names,
so the real detection and loading code is what the tests exercise.

The weights are random but not arbitrary: the first convolution copies the RGB channels into
three feature channels, the upsampling and output convolutions carry those channels through,
and everything else is small noise. So the model's output is the input enlarged (nearest
neighbour), plus a little seeded texture from the residual trunk: an upscaler whose pictures
look like the input, with values inside 0..1 rather than clamped flat, so tiling differences
are measurable. Sizes: 8 features, 1 residual block (spandrel fixes the growth channels at
32), about 250 thousand parameters.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch

from latentloom.models.safetensors_write import save_tensors

Layout = Literal["new", "old"]
FEATURES = 8
GROWTH = 32  # spandrel's RRDBNet always builds 32 growth channels
NOISE = 0.005  # the trunk's weights: enough texture to matter, little enough to look like the input


def _conv(generator: torch.Generator, out: int, into: int) -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.randn(out, into, 3, 3, generator=generator) * NOISE
    return weight, torch.zeros(out)


def _pass_through(generator: torch.Generator, out: int, into: int) -> tuple[torch.Tensor, ...]:
    """A convolution that copies the first three channels (centre tap 1), plus small noise."""
    weight, bias = _conv(generator, out, into)
    for channel in range(3):
        weight[channel, channel, 1, 1] += 1.0
    return weight, bias


def _new_layout(generator: torch.Generator, scale: int, blocks: int) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}

    def put(name: str, pair: tuple[torch.Tensor, ...]) -> None:
        tensors[f"{name}.weight"], tensors[f"{name}.bias"] = pair

    put("conv_first", _pass_through(generator, FEATURES, 3))
    for block in range(blocks):
        for rdb in range(1, 4):
            for conv in range(1, 6):
                into = FEATURES + (conv - 1) * GROWTH
                out = FEATURES if conv == 5 else GROWTH
                put(f"body.{block}.rdb{rdb}.conv{conv}", _conv(generator, out, into))
    put("conv_body", _conv(generator, FEATURES, FEATURES))
    for index in range(1, int(math.log2(scale)) + 1):
        put(f"conv_up{index}", _pass_through(generator, FEATURES, FEATURES))
    put("conv_hr", _pass_through(generator, FEATURES, FEATURES))
    put("conv_last", _pass_through(generator, 3, FEATURES))
    return tensors


def _old_name(name: str, scale: int) -> str:
    """The original ESRGAN name of a new-layout tensor (the mapping spandrel undoes)."""
    stem, kind = name.rsplit(".", 1)
    ups = int(math.log2(scale))
    if stem == "conv_first":
        return f"model.0.{kind}"
    if stem.startswith("body."):
        _, block, rdb, conv = stem.split(".")
        return f"model.1.sub.{block}.RDB{rdb[3:]}.{conv}.0.{kind}"
    if stem == "conv_body":
        return f"model.1.sub.{{blocks}}.{kind}"
    if stem.startswith("conv_up"):
        return f"model.{int(stem[7:]) * 3}.{kind}"
    if stem == "conv_hr":
        return f"model.{ups * 3 + 2}.{kind}"
    return f"model.{ups * 3 + 4}.{kind}"  # conv_last


def tiny_upscaler_tensors(
    *, scale: int = 4, layout: Layout = "new", blocks: int = 1, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The state dict of a tiny x`scale` RRDBNet (scale 1, 2, 4 or 8) in `layout`."""
    if scale not in (1, 2, 4, 8):
        raise ValueError(f"scale {scale}: the tiny upscaler is 1x, 2x, 4x or 8x")
    generator = torch.Generator().manual_seed(seed)
    tensors = _new_layout(generator, scale, blocks)
    if layout == "new":
        return tensors
    return {
        _old_name(name, scale).replace("{blocks}", str(blocks)): tensor
        for name, tensor in tensors.items()
    }


def make_tiny_upscaler(
    path: str | Path, *, scale: int = 4, layout: Layout = "new", blocks: int = 1, seed: int = 0
) -> Path:
    """Write the tiny upscaler as a `.safetensors` file (float32) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = tiny_upscaler_tensors(scale=scale, layout=layout, blocks=blocks, seed=seed)
    save_tensors(target, tensors, metadata={"latentloom": "tiny random-weight ESRGAN"})
    return target
