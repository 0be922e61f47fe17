"""Assemble an Engine from user-facing settings: folders, device, memory budget, packs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.models.folders import ModelFolders
from latentloom.registry import build_registry


def default_memory_budget() -> int:
    """60% of physical memory: room for a checkpoint or two plus intermediate outputs."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return int(total * 0.6)


def make_engine(
    *,
    model_dirs: Iterable[Path],
    output_dir: Path,
    input_dir: Path,
    device: str | None = None,
    node_packs: Iterable[Path] = (),
    memory_budget: int | None = None,
) -> Engine:
    from latentloom.models.device import choose_device, choose_dtype

    chosen = choose_device(device)
    settings = RunSettings(
        device=chosen,
        dtype=choose_dtype(chosen, None),
        folders=Folders(ModelFolders.of(model_dirs), Path(input_dir).resolve()),
        output_dir=Path(output_dir).resolve(),
    )
    budget = memory_budget if memory_budget is not None else default_memory_budget()
    return Engine(build_registry(node_packs), settings, OutputCache(budget))
