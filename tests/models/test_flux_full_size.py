"""FLUX.1 dev and schnell at full size, metadata only: detection, config and the key map.

The transformer is built on the meta device from diffusers' published configs for
black-forest-labs/FLUX.1-dev and -schnell, its weights named and shaped as Black Forest Labs'
`flux1-*.safetensors` hold them (`flux_tiny.flux_original_state`, on meta tensors), and
written as a real safetensors header over a sparse file of the real length (about 24 GB that
take no disk). Load Diffusion Model's path then runs up to the first byte it would read: the
file is recognised as a FLUX transformer, the config comes back from the shapes exactly as
published, and the whole key map is rehearsed against the 3072-wide module with nothing
missing or mis-shaped. Fast, so not marked slow: no weight is ever read.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch import nn

from latentloom.models.flux_keys import flux_config, flux_prefix
from latentloom.models.flux_load import _targets, empty_flux_transformer
from latentloom.models.flux_tiny import flux_original_state
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.streaming import ModuleFiller

# diffusers' transformer/config.json of the two releases (numbers, not code).
PUBLISHED: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "axes_dims_rope": (16, 56, 56),
}
# Tensors and parameters of the published files: dev's 11,901,408,320 weights are the
# 23,802,816,640 data bytes of flux1-dev.safetensors; schnell lacks the guidance embedder's two
# layers (256 -> 3072 and 3072 -> 3072, with biases) and their 4 tensors.
GUIDANCE_EMBEDDER = 256 * 3072 + 3072 + 3072 * 3072 + 3072
COUNTS = {"dev": (780, 11_901_408_320), "schnell": (776, 11_901_408_320 - GUIDANCE_EMBEDDER)}


def header_only_file(path: Path, shapes: dict[str, tuple[int, ...]]) -> int:
    """A bf16 safetensors file with these tensors; the data is a hole. Returns the data bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in sorted(shapes.items()):
        size = 2 * int(torch.Size(shape).numel())
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as file:
        file.write(struct.pack("<Q", len(raw)) + raw)
        file.truncate(8 + len(raw) + offset)
    return offset


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_full_size_flux_is_recognised_and_its_key_map_fits(tmp_path: Path, variant: str) -> None:
    published = {**PUBLISHED, "guidance_embeds": variant == "dev"}
    module: Any = empty_flux_transformer(published)
    shapes = {
        name: tuple(tensor.shape)
        for name, tensor in flux_original_state(module, torch.bfloat16).items()
    }
    tensors, parameters = COUNTS[variant]
    assert len(shapes) == tensors
    assert sum(torch.Size(shape).numel() for shape in shapes.values()) == parameters
    assert sum(p.numel() for p in module.parameters()) == parameters

    path = tmp_path / f"flux1-{variant}.safetensors"
    data_bytes = header_only_file(path, shapes)
    assert data_bytes == 2 * parameters  # about 23.8 GB, none of it on disk
    with SafetensorsFile(path) as file:
        assert flux_prefix(file.keys()) == ""
        config = flux_config(file.shapes(), path)
        assert {**config, "axes_dims_rope": tuple(config["axes_dims_rope"])} == published
        names = {key: key for key in file}
        filler = ModuleFiller("unet", cast(nn.Module, empty_flux_transformer(config)))
        targets = _targets(file, names, filler, 3072, path)  # raises on any misfit
    assert len(targets) == tensors
