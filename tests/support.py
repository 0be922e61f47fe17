"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, load_workflow_file

if TYPE_CHECKING:
    from latentloom.engine.context import NodeContext

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
ARITH_PACK = REPO / "tests" / "fixtures" / "packs" / "arith"


def make_arith_engine(folder: Path) -> Engine:
    """A CPU engine over the trivial arith pack only: no models, fast, for engine and job tests."""
    import torch

    from latentloom.engine.cache import OutputCache
    from latentloom.engine.context import RunSettings
    from latentloom.engine.folders import Folders
    from latentloom.models.folders import ModelFolders
    from latentloom.registry import Registry, load_pack_folder

    registry = Registry()
    load_pack_folder(registry, ARITH_PACK)
    folders = Folders(ModelFolders.of([folder]), folder)
    settings = RunSettings(torch.device("cpu"), torch.float32, folders, folder / "output")
    return Engine(registry, settings, OutputCache(2**30))


def make_engine(models_dir: Path, output_dir: Path, input_dir: Path, *node_packs: Path) -> Engine:
    """A CPU engine over the built-in pack (and any extra pack folders), with a fresh cache."""
    from latentloom.engine.setup import make_engine as build

    return build(
        model_dirs=[models_dir],
        output_dir=output_dir,
        input_dir=input_dir,
        device="cpu",
        node_packs=node_packs,
    )


def load_example(name: str) -> Workflow:
    return load_workflow_file(WORKFLOWS / name)


def pack_module(name: str) -> ModuleType:
    """One file of the built-in pack (`nodes/<name>.py`) imported on its own, to call its node
    functions directly; it imports only the public API, so no other pack file is needed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"test_pack_{name}", REPO / "nodes" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node_context(input_dir: Path | None = None) -> NodeContext:
    """A CPU context for calling a node function directly (inputs read from `input_dir`)."""
    import torch

    from latentloom.engine.context import CancelToken, NodeContext, RunSettings
    from latentloom.engine.folders import Folders
    from latentloom.models.folders import ModelFolders

    folder = input_dir or REPO / "workflows" / "inputs"
    folders = Folders(ModelFolders.of([folder]), folder)
    settings = RunSettings(torch.device("cpu"), torch.float32, folders, folder / "output")
    return NodeContext("node", settings, CancelToken())
