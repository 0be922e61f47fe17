"""Placeholders: ComfyUI nodes whose class Latentloom does not run yet, kept in the graph.

The importer never drops an unsupported class. It keeps the node with the type
`comfy:<ClassName>` and, under `ui.comfy`, what the file said about its sockets:
`{"class_type", "inputs": [{"name", "type"}...], "outputs": [{"name", "type"}...]}`. Links
from a placeholder name the ComfyUI output index as a string ("0", "1"...). Validation names
the class; bypassing a placeholder passes its inputs through by these socket types. `ui` is
editor state written by any client, so everything here reads it defensively.
"""

from __future__ import annotations

from typing import Any

from latentloom.graph.workflow import WorkflowNode
from latentloom.interop.comfy.report import PLACEHOLDER_PREFIX


def is_placeholder(node: WorkflowNode) -> bool:
    return node.type.startswith(PLACEHOLDER_PREFIX)


def comfy_class(node: WorkflowNode) -> str:
    """The ComfyUI class name a placeholder stands for."""
    described = node.ui.get("comfy")
    if isinstance(described, dict) and isinstance(described.get("class_type"), str):
        return str(described["class_type"])
    return node.type.removeprefix(PLACEHOLDER_PREFIX)


def input_types(node: WorkflowNode) -> list[tuple[str, str]]:
    """(name, type) of each ComfyUI input, in the file's order; [] when not described."""
    return [(name, kind) for name, kind in _sockets(node, "inputs")]


def output_type(node: WorkflowNode, output: str) -> str | None:
    """The type of output "0", "1"... of a placeholder, or None when not described."""
    outputs = _sockets(node, "outputs")
    if not output.isdigit() or int(output) >= len(outputs):
        return None
    return outputs[int(output)][1]


def _sockets(node: WorkflowNode, side: str) -> list[tuple[str, str]]:
    described: Any = node.ui.get("comfy")
    entries = described.get(side) if isinstance(described, dict) else None
    if not isinstance(entries, list):
        return []
    sockets = []
    for entry in entries:
        if not isinstance(entry, dict):
            return []  # a malformed list describes nothing we can rely on
        name, kind = entry.get("name"), entry.get("type")
        if not isinstance(name, str) or not isinstance(kind, str):
            return []
        sockets.append((name, kind))
    return sockets
