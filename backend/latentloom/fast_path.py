"""Optional speed-ups for a UNet on an accelerator: channels-last memory and `torch.compile`.

Both are settings, off by default, and neither changes what is computed — only how: channels-
last stores activations NHWC, which cuDNN's fp16/bf16 convolutions run faster on tensor cores
(on the CPU it helps little and can hurt, so it applies only on CUDA unless forced); compile
traces the UNet's forward once per shape and caches the generated kernels in a folder under
the data directory, so a restart reuses them instead of compiling again (minutes for SDXL).
Attention needs nothing here: diffusers' default processor, `AttnProcessor2_0`, already calls
`scaled_dot_product_attention` (flash or memory-efficient kernels on CUDA);
`attention_processors` reports what a UNet runs so a check can say so.

The settings travel from the server's settings (or the CLI's flags) through the worker's
config into the engine's `RunSettings`. The engine calls `apply_to_new_models` on each node's
outputs, once, when the node ran: every loader's MODEL (checkpoint, diffusion model, SD 3,
FLUX) passes there right after its module is built, and a module is changed only the first
time it is seen (a mark on the module), because a loaded model is shared by every job and
every LoRA'd handle that uses it — compiling per job would defeat the cache.

This module imports torch only when it changes a module: the server's settings and the
worker's config carry `FastPathSettings` without loading torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import torch

COMPILE_CACHE_FOLDER = "torch-compile-cache"  # under the data folder
SDPA_PROCESSORS = frozenset({"AttnProcessor2_0", "FusedAttnProcessor2_0"})
APPLIED_MARK = "_latentloom_fast_path"  # set on a module once the fast path changed it


@dataclass(frozen=True)
class FastPathSettings:
    """What to do to each loaded UNet / transformer; `force` applies it off CUDA too (tests,
    benchmarks); `cache_dir` holds compiled kernels (None: inductor's own default folder)."""

    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "max-autotune-no-cudagraphs"  # CUDA graphs break with patched models
    force: bool = False
    cache_dir: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.channels_last or self.compile

    def applies_on(self, device: torch.device) -> bool:
        return self.enabled and (device.type == "cuda" or self.force)


def compile_cache_dir(data_dir: Path) -> Path:
    return data_dir / COMPILE_CACHE_FOLDER


def use_compile_cache(folder: Path) -> Path:
    """Point inductor's kernel cache at `folder` (unless the user chose one)."""
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
    untouched unless `force` (or `settings.force`). Returns `unet`."""
    import torch

    if device.type != "cuda" and not (force or settings.force):
        return unet
    if settings.channels_last:
        # nn.Module.to takes memory_format at run time; its type stubs do not say so.
        cast(Any, unet).to(memory_format=torch.channels_last)
    if settings.compile:
        cache = settings.cache_dir or (compile_cache_dir(data_dir) if data_dir else None)
        if cache is not None:
            use_compile_cache(cache)
        # In place (nn.Module.compile), not torch.compile's wrapper: the module keeps its
        # identity and state_dict names, so LoRA and attention patches still find their layers.
        unet.compile(mode=settings.compile_mode, dynamic=False)
    return unet


def apply_to_new_models(
    values: Iterable[object], device: torch.device, settings: FastPathSettings
) -> int:
    """Apply the fast path to the module of each MODEL handle among `values` not changed
    before; returns how many were changed. Nothing is imported when the settings are off."""
    if not settings.applies_on(device):
        return 0
    from latentloom.models.handles import DiffusionModel

    changed = 0
    for value in values:
        if not isinstance(value, DiffusionModel) or getattr(value.unet, APPLIED_MARK, False):
            continue
        module: Any = value.unet  # the UNet or the SD 3 / FLUX transformer
        apply_fast_path(module, device, settings)
        setattr(module, APPLIED_MARK, True)
        changed += 1
    return changed
