"""Calling built-in nodes' functions directly, as the executor does, for tests of their results."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import torch

from latentloom.engine.context import CancelToken, NodeContext, RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.models.folders import ModelFolders
from latentloom.registry import Registry, load_pack_folder
from tests.support import REPO, make_engine


@cache
def builtin_registry() -> Registry:
    built = Registry()
    load_pack_folder(built, REPO / "nodes")
    return built


def node_runner(output_dir: Path) -> Callable[..., dict[str, Any]]:
    """`call(node_type, **inputs)`: the node's outputs (and report), on the CPU, writing under
    `output_dir`."""
    folders = Folders(ModelFolders.of([output_dir]), output_dir)
    settings = RunSettings(torch.device("cpu"), torch.float32, folders, output_dir)

    def call(node_type: str, **inputs: Any) -> dict[str, Any]:
        spec = builtin_registry().specs[node_type]
        context = NodeContext(node_id="n", settings=settings, cancel=CancelToken())
        return dict(spec.function(context, **inputs))

    return call


def bare_engine(root: Path) -> Engine:
    """The built-in pack with empty model, output and input folders: enough for graphs that
    load no model."""
    for name in ("models", "output", "input"):
        (root / name).mkdir(exist_ok=True)
    return make_engine(root / "models", root / "output", root / "input")
