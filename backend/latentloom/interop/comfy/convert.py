"""From ComfyUI nodes, read by either format reader, to our workflow document's nodes.

Both readers (`api_format.py`, `editor_format.py`) first turn the file into `RawNode`s:
ComfyUI ids, classes, inputs by ComfyUI name (a literal or a `RawLink` to an output index),
plus what the editor needs (title, mode, `ui`). `build_nodes` then decides, in this order:

1. which nodes the class table maps (`mapping.BY_CLASS`) and which become placeholders,
   for an unknown class, an input we have no counterpart for, a non-neutral value in a
   `neutral` input, or a value outside a `booleans` pair or `shared_values`;
2. which mapped nodes are linked from an output we don't produce (the table says None):
   those become placeholders too, so their links stay whole;
3. every link's output name (ours for mapped sources, the ComfyUI index as a string for
   placeholders), following reroute chains to the real source and noting the route.

A placeholder keeps its ComfyUI input names, its links and `ui.comfy` (what the file said),
so nothing is dropped and export can write it back. Problems that make the file unreadable
raise `ComfyFormatError` naming where; nothing is returned half-built.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from latentloom.graph.workflow import LiteralValue
from latentloom.interop.comfy.mapping import BY_CLASS, ClassMapping
from latentloom.interop.comfy.report import (
    PLACEHOLDER_PREFIX,
    ComfyFormatError,
    ImportReport,
    MappedNode,
    UnsupportedNode,
)
from latentloom.node import NodeSpec
from latentloom.registry import Registry, build_registry

REROUTE_OUTPUT = "out"  # the editor's name for a reroute's one output (records.ts)
UPLOAD_BUTTON = "upload"


@dataclass(frozen=True)
class ImportResult:
    workflow: dict[str, Any]  # our version-2 document JSON
    report: ImportReport


@dataclass(frozen=True)
class RawLink:
    node: str  # ComfyUI id of the source (a node or, in editor files, a reroute)
    output: int  # ComfyUI output index
    where: str  # where the link is in the file, for errors


@dataclass
class RawNode:
    id: str
    class_type: str
    where: str  # e.g. 'prompt["3"]' or 'nodes[2]'
    inputs: dict[str, RawLink | LiteralValue] = field(default_factory=dict)
    title: str | None = None
    mode: str = "run"
    ui: dict[str, Any] = field(default_factory=dict)
    # What the file said about the node's sockets, for placeholders (editor files know more).
    comfy_inputs: list[dict[str, str]] | None = None
    comfy_outputs: list[dict[str, str]] | None = None
    widgets_values: list[Any] | dict[str, Any] | None = None
    # Our node id when the reader already decided it (notes, primitives), else from the table.
    our_type: str | None = None
    # Set by the reader when a widget value alone makes the node unsupported.
    unsupported_reason: str | None = None


@dataclass(frozen=True)
class RawReroute:
    id: str
    pos: list[float]
    input: RawLink | None
    type: str | None = None


@functools.cache
def default_registry() -> Registry:
    """The built-in pack plus installed packs: what `latentloom serve` would run."""
    return build_registry()


def describe(value: object) -> str:
    kind = {dict: "an object", list: "a list", type(None): "null"}.get(type(value))
    return kind or f"{value!r} ({type(value).__name__})"


def check_literal(value: object, where: str) -> LiteralValue:
    """A JSON value our documents can hold as a literal input, else an error naming where."""
    scalar = (int, float, str, bool)
    if isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(v, scalar) for v in value)
    ):
        return value  # type: ignore[return-value]
    raise ComfyFormatError(
        where, f"expected a number, string, boolean or list of them, got {describe(value)}"
    )


def mapping_for(class_type: str, registry: Registry) -> tuple[ClassMapping, NodeSpec] | None:
    entry = BY_CLASS.get(class_type)
    spec = registry.get(entry.node) if entry else None
    return (entry, spec) if entry and spec else None


def _is_upload_button(entry: ClassMapping, name: str) -> bool:
    """API prompts carry Load Image's upload button as an input `"upload": "image"`."""
    return name == UPLOAD_BUTTON and bool(entry.uploads)


def user_title(title: str, class_type: str, registry: Registry) -> str | None:
    """A title the user gave, or None when it is only the class's default name."""
    found = mapping_for(class_type, registry)
    defaults = {class_type}
    if found:
        defaults |= {*found[1].aliases, found[1].display_name}
    return None if title in defaults else title


def _unsupported_reason(raw: RawNode, registry: Registry) -> str | None:
    if raw.unsupported_reason:
        return raw.unsupported_reason
    if raw.our_type is not None:
        return None
    found = mapping_for(raw.class_type, registry)
    if found is None:
        return "no Latentloom node for this class yet"
    entry, spec = found
    for name, value in raw.inputs.items():
        if _is_upload_button(entry, name):
            continue
        if name in entry.neutral:
            if isinstance(value, RawLink):
                return f"input {name!r} is linked; Latentloom only supports the value(s) " + (
                    ", ".join(repr(v) for v in entry.neutral[name])
                )
            if value not in entry.neutral[name]:
                allowed = ", ".join(repr(v) for v in entry.neutral[name])
                return f"input {name!r} is {value!r}; Latentloom only supports {allowed}"
        elif spec.input(entry.ours(name)) is None:
            return f"input {name!r} has no Latentloom counterpart"
        elif (reason := _value_reason(entry, name, value)) is not None:
            return reason
    return None


def _value_reason(entry: ClassMapping, name: str, value: RawLink | LiteralValue) -> str | None:
    """Why a value of an input both sides have cannot cross (`booleans`, `shared_values`)."""
    allowed = entry.booleans.get(name) or entry.shared_values.get(name)
    if allowed is None:
        return None
    shown = ", ".join(repr(v) for v in allowed)
    if isinstance(value, RawLink):
        if name in entry.booleans:  # a link carries ComfyUI's word; nothing makes it a bool
            return f"input {name!r} is linked; Latentloom only takes it typed in ({shown})"
        return None  # a linked shared input: validation checks what arrives
    if value not in allowed:
        return f"input {name!r} is {value!r}; Latentloom only supports {shown}"
    return None


class _Builder:
    def __init__(
        self,
        raws: list[RawNode],
        reroutes: Mapping[str, RawReroute],
        registry: Registry,
        report: ImportReport,
    ) -> None:
        self.raws = {raw.id: raw for raw in raws}
        self.reroutes = reroutes
        self.registry = registry
        self.report = report
        self.placeholders: dict[str, str] = {}  # node id -> reason
        self._consumer_types: dict[str, dict[int, str]] | None = None  # built when needed

    def build(self) -> dict[str, dict[str, Any]]:
        for raw in self.raws.values():
            reason = _unsupported_reason(raw, self.registry)
            if reason:
                self.placeholders[raw.id] = reason
        self._mark_missing_outputs()
        nodes = {raw.id: self._node(raw) for raw in self.raws.values()}
        for raw in self.raws.values():
            if raw.id in self.placeholders:
                self.report.unsupported.append(
                    UnsupportedNode(
                        node=raw.id, comfy_class=raw.class_type, reason=self.placeholders[raw.id]
                    )
                )
            else:
                our_type = nodes[raw.id]["type"]
                self.report.mapped.append(
                    MappedNode(node=raw.id, comfy_class=raw.class_type, type=our_type)
                )
        return nodes

    def _links(self) -> list[tuple[RawNode, str, RawLink]]:
        return [
            (raw, name, value)
            for raw in self.raws.values()
            for name, value in raw.inputs.items()
            if isinstance(value, RawLink)
        ]

    def origin(self, link: RawLink) -> tuple[RawLink | None, str | None]:
        """The node output a link really starts from (None: a reroute fed by nothing), and
        the reroute it arrives through."""
        first = link.node if link.node in self.reroutes else None
        seen: list[str] = []
        while link.node in self.reroutes:
            if link.node in seen:
                chain = " -> ".join([*seen, link.node])
                raise ComfyFormatError(link.where, f"reroutes {chain} form a loop")
            seen.append(link.node)
            upstream = self.reroutes[link.node].input
            if upstream is None:
                return None, first
            link = upstream
        if link.node not in self.raws:
            raise ComfyFormatError(link.where, f'links to node "{link.node}", which does not exist')
        return link, first

    def _mark_missing_outputs(self) -> None:
        for _raw, _name, link in self._links() + self._reroute_links():
            source_link, _via = self.origin(link)
            if source_link is None:
                continue
            source = self.raws[source_link.node]
            if source.id in self.placeholders:
                continue
            names = self._output_names(source)
            index = source_link.output
            if index >= len(names):
                raise ComfyFormatError(
                    source_link.where,
                    f'links to output {index} of node "{source.id}" ({source.class_type}), '
                    f"which has {len(names)} output(s)",
                )
            if names[index] is None:
                self.placeholders[source.id] = (
                    f"output {index} is used, which Latentloom does not produce yet"
                )

    def _reroute_links(self) -> list[tuple[None, str, RawLink]]:
        return [(None, "", r.input) for r in self.reroutes.values() if r.input is not None]

    def _output_names(self, raw: RawNode) -> tuple[str | None, ...]:
        spec = self.registry.get(raw.our_type) if raw.our_type else None
        if spec is not None:
            return tuple(output.name for output in spec.outputs)
        found = mapping_for(raw.class_type, self.registry)
        assert found is not None, "only mapped nodes reach here"
        entry, spec = found
        return entry.output_names(spec)

    def output_ref(self, link: RawLink) -> dict[str, str]:
        """Our `{"node", "output"}` for a link that starts at a node (not a reroute)."""
        source = self.raws[link.node]
        if source.id in self.placeholders:
            return {"node": source.id, "output": str(link.output)}
        name = self._output_names(source)[link.output]
        assert name is not None, "sources of unproduced outputs are placeholders"
        return {"node": source.id, "output": name}

    def output_type(self, link: RawLink) -> str:
        source = self.raws.get(link.node)
        if source is None or source.id in self.placeholders:
            outputs = source.comfy_outputs if source else None
            if outputs and link.output < len(outputs):
                return outputs[link.output].get("type", "*")
            return "*"
        spec = self.registry.get(source.our_type or BY_CLASS[source.class_type].node)
        name = self._output_names(source)[link.output]
        found = spec.output(name) if spec and name else None
        return str(found.type) if found else "*"

    def _node(self, raw: RawNode) -> dict[str, Any]:
        ui = dict(raw.ui)
        inputs: dict[str, Any] = {}
        placeholder = raw.id in self.placeholders
        found = None if placeholder or raw.our_type else mapping_for(raw.class_type, self.registry)
        for name, value in raw.inputs.items():
            if found and (name in found[0].neutral or _is_upload_button(found[0], name)):
                continue
            ours = found[0].ours(name) if found else name
            if isinstance(value, RawLink):
                source, via = self.origin(value)
                if source is not None:  # else a reroute fed by nothing: the input is unset
                    inputs[ours] = self.output_ref(source)
                if via is not None:
                    ui.setdefault("reroutes", {})[ours] = via
            else:
                inputs[ours] = found[0].to_ours(name, value) if found else value
        if found:
            inputs.update(found[0].fixed)
        if placeholder:
            ui["comfy"] = self._comfy_ui(raw)
            node_type = PLACEHOLDER_PREFIX + raw.class_type
        else:
            node_type = raw.our_type or (found[0].node if found else raw.class_type)
            inputs = _in_spec_order(inputs, self.registry.get(node_type))
        node: dict[str, Any] = {"type": node_type, "inputs": inputs}
        if raw.mode != "run":
            node["mode"] = raw.mode
        if raw.title is not None:
            node["title"] = raw.title
        if ui:
            node["ui"] = ui
        return node

    def _comfy_ui(self, raw: RawNode) -> dict[str, Any]:
        inputs = raw.comfy_inputs
        if inputs is None:  # API files say nothing about types: infer them from the values
            inputs = [
                {"name": name, "type": self._value_type(value)}
                for name, value in raw.inputs.items()
            ]
        outputs = raw.comfy_outputs
        if outputs is None:
            outputs = self._outputs_from_consumers(raw.id)
        comfy: dict[str, Any] = {"class_type": raw.class_type, "inputs": inputs, "outputs": outputs}
        if raw.widgets_values is not None:
            comfy["widgets_values"] = raw.widgets_values
        return comfy

    def _value_type(self, value: RawLink | LiteralValue) -> str:
        if isinstance(value, RawLink):
            source = self.origin(value)[0]
            return self.output_type(source) if source else "*"
        if isinstance(value, bool):
            return "BOOLEAN"
        return {int: "INT", float: "FLOAT", str: "STRING"}.get(type(value), "*")

    def _outputs_from_consumers(self, node_id: str) -> list[dict[str, str]]:
        """Output types of a node only an API file names, from the inputs its links feed."""
        if self._consumer_types is None:
            self._consumer_types = {}
            for raw, name, link in self._links():
                source, _via = self.origin(link)
                if source is None:
                    continue
                types = self._consumer_types.setdefault(source.node, {})
                found = (
                    None
                    if raw.id in self.placeholders
                    else mapping_for(raw.class_type, self.registry)
                )
                spec_input = found[1].input(found[0].ours(name)) if found else None
                if spec_input is not None:
                    types[source.output] = str(spec_input.type)
                else:
                    types.setdefault(source.output, "*")
        types = self._consumer_types.get(node_id, {})
        count = max(types, default=-1) + 1
        return [{"name": str(i), "type": types.get(i, "*")} for i in range(count)]


def _in_spec_order(inputs: dict[str, Any], spec: NodeSpec | None) -> dict[str, Any]:
    """Inputs in the catalog's order, as our editor saves them, so files diff cleanly."""
    order = {spec_input.name: i for i, spec_input in enumerate(spec.inputs)} if spec else {}
    return dict(sorted(inputs.items(), key=lambda item: order.get(item[0], len(order))))


def build_nodes(
    raws: list[RawNode],
    registry: Registry,
    report: ImportReport,
    reroutes: Mapping[str, RawReroute] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Our document's `nodes` and `meta.reroutes` for ComfyUI nodes; fills `report`."""
    builder = _Builder(raws, reroutes or {}, registry, report)
    nodes = builder.build()
    routes: list[dict[str, Any]] = []
    for reroute in (reroutes or {}).values():
        entry: dict[str, Any] = {"id": reroute.id, "pos": reroute.pos}
        if reroute.type and reroute.type != "*":
            entry["type"] = reroute.type
        if reroute.input is not None:
            if reroute.input.node in builder.reroutes:
                entry["input"] = {"node": reroute.input.node, "output": REROUTE_OUTPUT}
            elif (source := builder.origin(reroute.input)[0]) is not None:
                entry["input"] = builder.output_ref(source)
        routes.append(entry)
    return nodes, routes


def document(
    nodes: dict[str, dict[str, Any]],
    groups: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Our version-2 workflow document around converted nodes."""
    result: dict[str, Any] = {"schema": "latentloom/workflow", "version": 2, "nodes": nodes}
    if groups:
        result["groups"] = groups
    if meta:
        result["meta"] = meta
    return result
