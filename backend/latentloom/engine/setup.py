"""Assemble an Engine from user-facing settings: folders, device, memory budgets, packs.

Two budgets come from the machine unless the config file sets them: the output cache's
(60% of RAM) and the cost budget validation weighs each job against (`graph/budget.py`):
75% of RAM for what the job holds in memory, 90% of the accelerator's memory for weights and
working sets on it (on a CPU the two are one pool), and 100,000 megapixel-steps of work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.fast_path import FastPathSettings
from latentloom.graph.budget import CostBudget
from latentloom.models.folders import ModelFolders
from latentloom.registry import build_registry

HOST_BUDGET_SHARE = 0.75
DEVICE_BUDGET_SHARE = 0.90
DEFAULT_WORK_BUDGET = 100_000.0  # megapixel-steps: ~2 h of 1024² SDXL steps on a fast GPU


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def default_memory_budget() -> int:
    """60% of physical memory: room for a checkpoint or two plus intermediate outputs."""
    return int(physical_memory() * 0.6)


def device_memory(device: torch.device) -> int | None:
    """Memory of an accelerator with its own memory (CUDA); None when it shares RAM."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device.index or 0).total_memory)


def derive_cost_budget(
    device: torch.device,
    dtype: torch.dtype,
    *,
    memory_bytes: int | None = None,
    device_memory_bytes: int | None = None,
    work_megapixel_steps: float | None = None,
) -> CostBudget:
    """The budget for this machine; each value given overrides the derived one."""
    total_device = device_memory(device)
    if device_memory_bytes is None and total_device is not None:
        device_memory_bytes = int(total_device * DEVICE_BUDGET_SHARE)
    return CostBudget(
        memory_bytes=memory_bytes or int(physical_memory() * HOST_BUDGET_SHARE),
        device_memory_bytes=device_memory_bytes if total_device is not None else None,
        work_megapixel_steps=work_megapixel_steps or DEFAULT_WORK_BUDGET,
        compute_bytes=torch.empty(0, dtype=dtype).element_size(),
    )


def make_engine(
    *,
    model_dirs: Iterable[Path],
    output_dir: Path,
    input_dir: Path,
    device: str | None = None,
    node_packs: Iterable[Path] = (),
    memory_budget: int | None = None,
    memory_budget_bytes: int | None = None,
    device_memory_budget_bytes: int | None = None,
    work_budget_megapixel_steps: float | None = None,
    fast_path: FastPathSettings | None = None,
) -> Engine:
    """`memory_budget` is the output cache's; the `*_budget_*` values set the cost budget;
    `fast_path` what is done to each loaded UNet (fast_path.py; None: nothing)."""
    from latentloom.models.device import choose_device, choose_dtype

    chosen = choose_device(device)
    dtype = choose_dtype(chosen, None)
    settings = RunSettings(
        device=chosen,
        dtype=dtype,
        folders=Folders(ModelFolders.of(model_dirs), Path(input_dir).resolve()),
        output_dir=Path(output_dir).resolve(),
        fast_path=fast_path or FastPathSettings(),
    )
    budget = memory_budget if memory_budget is not None else default_memory_budget()
    cost_budget = derive_cost_budget(
        chosen,
        dtype,
        memory_bytes=memory_budget_bytes,
        device_memory_bytes=device_memory_budget_bytes,
        work_megapixel_steps=work_budget_megapixel_steps,
    )
    return Engine(build_registry(node_packs), settings, OutputCache(budget), cost_budget)
