"""Optional speed-ups for a UNet on an accelerator: channels-last memory and `torch.compile`.

Both are settings, off by default, and neither changes what is computed — only how: channels-
last stores activations NHWC, which cuDNN's fp16/bf16 convolutions run faster on tensor cores
(on the CPU it helps little and can hurt, so it applies only on CUDA unless forced); compile
traces the UNet's forward once per shape and caches the generated kernels in a folder under
the data directory, so a restart reuses them instead of compiling again (minutes for SDXL).
Attention needs nothing here: diffusers' default processor, `AttnProcessor2_0`, already calls
`scaled_dot_product_attention` (flash or memory-efficient kernels on CUDA);
`attention_processors` reports what a UNet runs so a check can say so.

`apply_fast_path` changes the module in place, once, where the model is loaded: a loaded model
is shared by every job that uses it, and compiling per job would defeat the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

COMPILE_CACHE_FOLDER = "torch-compile-cache"  # under the data folder
SDPA_PROCESSORS = frozenset({"AttnProcessor2_0", "FusedAttnProcessor2_0"})


@dataclass(frozen=True)
class FastPathSettings:
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "max-autotune-no-cudagraphs"  # CUDA graphs break with patched models


def compile_cache_dir(data_dir: Path) -> Path:
    return data_dir / COMPILE_CACHE_FOLDER


def use_compile_cache(data_dir: Path) -> Path:
    """Point inductor's kernel cache at the data folder (unless the user chose one)."""
    folder = compile_cache_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def attention_processors(unet: Any) -> set[str]:
    """The attention processor classes a diffusers UNet runs."""
    return {type(processor).__name__ for processor in unet.attn_processors.values()}


def uses_sdpa(unet: Any) -> bool:
    return attention_processors(unet) <= SDPA_PROCESSORS


def apply_fast_path(
    unet: torch.nn.Module,
    device: torch.device,
    settings: FastPathSettings,
    *,
    data_dir: Path | None = None,
    force: bool = False,
) -> torch.nn.Module:
    """`unet` converted to channels-last and/or compiled in place per `settings`; on the CPU
    untouched unless `force`. Returns `unet`."""
    if device.type != "cuda" and not force:
        return unet
    if settings.channels_last:
        # nn.Module.to takes memory_format at run time; its type stubs do not say so.
        cast(Any, unet).to(memory_format=torch.channels_last)
    if settings.compile:
        if data_dir is not None:
            use_compile_cache(data_dir)
        # In place (nn.Module.compile), not torch.compile's wrapper: the module keeps its
        # identity and state_dict names, so LoRA and attention patches still find their layers.
        unet.compile(mode=settings.compile_mode, dynamic=False)
    return unet
