"""ComfyUI's API "prompt" format → our workflow document.

A prompt is `{"<id>": {"class_type", "inputs": {name: value | [source id, output index]},
"_meta"?: {"title"}}}`: what `/prompt` receives and what SaveImage writes to the `prompt`
PNG chunk. It has no positions, no editor-only nodes and no control_after_generate values,
so reading it is: check each node's shape (errors name `prompt["7"].inputs.model`), turn
two-element `[str, int]` lists into links, and let `convert.build_nodes` map the classes.
Nodes get a left-to-right layout by link depth, since the file has none.
"""

from __future__ import annotations

from typing import Any

from latentloom.interop.comfy.convert import (
    ImportResult,
    RawLink,
    RawNode,
    build_nodes,
    check_literal,
    default_registry,
    describe,
    document,
    user_title,
)
from latentloom.interop.comfy.report import ComfyFormatError, ImportReport
from latentloom.registry import Registry

COLUMN_WIDTH = 320  # layout for files without positions: one column per link depth
ROW_HEIGHT = 220


def looks_like_api_prompt(document: Any) -> bool:
    """Some value is a node object with a `class_type` (the reader then checks every node)."""
    return isinstance(document, dict) and any(
        isinstance(node, dict) and "class_type" in node for node in document.values()
    )


def import_api_prompt(
    prompt: dict[str, Any], registry: Registry | None = None, *, source: str = ""
) -> ImportResult:
    """Our workflow for a ComfyUI API prompt; unsupported classes become placeholders."""
    registry = registry or default_registry()
    if not isinstance(prompt, dict) or not prompt:
        raise ComfyFormatError(
            "prompt", f"expected an object of nodes by id, got {describe(prompt)}"
        )
    raws = [_read_node(str(node_id), node, registry) for node_id, node in prompt.items()]
    ids = {raw.id for raw in raws}
    for raw in raws:
        for value in raw.inputs.values():
            if isinstance(value, RawLink) and value.node not in ids:
                raise ComfyFormatError(
                    value.where, f'links to node "{value.node}", which the prompt does not have'
                )
    report = ImportReport(format="comfy-api", source=source)
    nodes, _routes = build_nodes(raws, registry, report)
    _lay_out(nodes)
    return ImportResult(document(nodes), report)


def _read_node(node_id: str, node: Any, registry: Registry) -> RawNode:
    where = f"prompt[{node_id!r}]".replace("'", '"')
    if not isinstance(node, dict):
        raise ComfyFormatError(where, f"expected a node object, got {describe(node)}")
    class_type = node.get("class_type")
    if not isinstance(class_type, str) or not class_type:
        raise ComfyFormatError(
            f"{where}.class_type", f"expected a class name, got {describe(class_type)}"
        )
    inputs = node.get("inputs", {})
    if not isinstance(inputs, dict):
        raise ComfyFormatError(f"{where}.inputs", f"expected an object, got {describe(inputs)}")
    raw = RawNode(id=node_id, class_type=class_type, where=where)
    for name, value in inputs.items():
        raw.inputs[name] = _read_input(value, f"{where}.inputs.{name}")
    raw.title = _title(node.get("_meta"), class_type, registry, where)
    return raw


def _read_input(value: Any, where: str) -> RawLink | Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
        source, index = value
        if not isinstance(source, bool) and (isinstance(source, str) or isinstance(index, int)):
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise ComfyFormatError(
                    where,
                    f"a link's output index must be a whole number ≥ 0, got {describe(index)}",
                )
            return RawLink(str(source), index, where)
    return check_literal(value, where)


def _title(meta: Any, class_type: str, registry: Registry, where: str) -> str | None:
    """`_meta.title`, unless it is only the class's default name (ComfyUI always writes one)."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise ComfyFormatError(f"{where}._meta", f"expected an object, got {describe(meta)}")
    title = meta.get("title")
    if title is None:
        return None
    if not isinstance(title, str):
        raise ComfyFormatError(f"{where}._meta.title", f"expected a string, got {describe(title)}")
    return user_title(title, class_type, registry)


def _lay_out(nodes: dict[str, dict[str, Any]]) -> None:
    """Place nodes in columns by their longest chain of upstream links."""
    depth: dict[str, int] = {}

    def depth_of(node_id: str, visiting: frozenset[str]) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in visiting or node_id not in nodes:
            return 0  # a cycle: validation reports it; any column will do
        sources = [v["node"] for v in nodes[node_id]["inputs"].values() if isinstance(v, dict)]
        found = 1 + max((depth_of(s, visiting | {node_id}) for s in sources), default=-1)
        depth[node_id] = found
        return found

    rows: dict[int, int] = {}
    for node_id, node in nodes.items():
        column = depth_of(node_id, frozenset())
        row = rows.get(column, 0)
        rows[column] = row + 1
        node.setdefault("ui", {})["pos"] = [column * COLUMN_WIDTH, row * ROW_HEIGHT]
