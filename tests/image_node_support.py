"""Helpers of the image node tests: call a node's function straight from its pack file (no
registry, no engine: the numbers under test are the function's), and build small graphs from
Load Image (workflows/inputs/landscape.png, 256x256) for validation and engine runs."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from latentloom.api import NodeContext, NodeSpec
from latentloom.engine.context import CancelToken, RunSettings
from latentloom.engine.folders import Folders
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.models.folders import ModelFolders
from tests.support import REPO, WORKFLOWS

LANDSCAPE = WORKFLOWS / "inputs" / "landscape.png"


@cache
def node_module(module: str) -> ModuleType:
    """A file of the built-in pack, imported on its own (its helpers are tested too)."""
    path = REPO / "nodes" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"image_node_tests_{module}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def node_specs(module: str) -> dict[str, NodeSpec]:
    return {node.id: node for node in node_module(module).NODES}


def context(folder: Path = Path("/nonexistent")) -> NodeContext:
    folders = Folders(ModelFolders.of([folder]), folder)
    settings = RunSettings(torch.device("cpu"), torch.float32, folders, folder / "output")
    return NodeContext("node", settings, CancelToken())


def run_node(module: str, node_id: str, **inputs: Any) -> Any:
    """The node's first output, its widgets at their defaults unless given, optional sockets
    unconnected."""
    spec = node_specs(module)[node_id]
    values = {item.name: item.default for item in spec.inputs}
    values.update(inputs)
    result = spec.function(context(), **values)
    return result[spec.outputs[0].name]


def image_graph(steps: dict[str, dict[str, Any]], *, output: str) -> Workflow:
    """Load Image ("load") then the given nodes, `output` previewed. A value "@name" links the
    image output of node `name`, "@name.output" another output ("@load" is the loaded image)."""
    nodes: dict[str, Any] = {"load": {"type": "image.load", "inputs": {"image": "landscape.png"}}}
    for node_id, node in steps.items():
        inputs = {
            name: _link(value) if isinstance(value, str) and value[:1] == "@" else value
            for name, value in node["inputs"].items()
        }
        nodes[node_id] = {"type": node["type"], "inputs": inputs}
    nodes["preview"] = {"type": "image.preview", "inputs": {"images": _link(f"@{output}")}}
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def _link(value: str) -> dict[str, str]:
    name, _dot, output = value[1:].partition(".")
    return {"node": name, "output": output or "image"}
