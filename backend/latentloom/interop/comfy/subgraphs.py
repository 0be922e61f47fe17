"""Editor files as one flat list of nodes with their incoming links, subgraphs expanded.

An editor file is a graph of nodes and links; version 1 files may also define subgraphs
(`definitions.subgraphs[]`), each a graph of its own with ordered `inputs`/`outputs` and two
virtual nodes: links from the input node (id -10) start at the subgraph's input of that slot,
links into the output node (id -20) end at its output of that slot. A node whose `type` is a
subgraph's id is an instance of it.

We flatten the way ComfyUI executes them: an instance's inner nodes get ids
`"<instance id>:<inner id>"` (nested: `"5:3:7"`), a link from the input node takes whatever
feeds the instance's input (a link, or the value of the widget the instance shows for it),
and a link from an instance's output is redirected to what feeds that output inside. Inner
positions move to the instance's place, and each instance becomes a group named after the
subgraph so the flat canvas still shows where it was.

Each node's incoming links are read from its `inputs[].link` ids, looked up by id in the
graph's `links` table (arrays `[id, from, from_slot, to, to_slot, type]` in 0.4 files,
objects `{id, origin_id, origin_slot, target_id, target_slot, type}` in version 1), so a
link is matched to its input by name whatever `to_slot` counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latentloom.graph.workflow import LiteralValue
from latentloom.interop.comfy.convert import RawLink, check_literal, describe
from latentloom.interop.comfy.report import ComfyFormatError

INPUT_NODE = -10  # the virtual node a subgraph's inputs leave from
OUTPUT_NODE = -20  # the virtual node a subgraph's outputs arrive at
MAX_DEPTH = 16
_LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


@dataclass(frozen=True)
class EditorLink:
    id: int
    origin: str  # ComfyUI node id as text ("-10" for a subgraph's input node)
    origin_slot: int
    target: str
    target_slot: int
    type: str
    parent_reroute: int | None  # the native reroute nearest the target, if any
    where: str


@dataclass
class FlatNode:
    id: str  # flattened: "12" or "5:12"
    where: str  # e.g. "nodes[3]" or "definitions.subgraphs[0].nodes[1]"
    data: dict[str, Any]  # the node as the file wrote it
    links: dict[str, RawLink] = field(default_factory=dict)  # ComfyUI input name -> source
    promoted: dict[str, LiteralValue] = field(default_factory=dict)  # values from an instance
    native_reroutes: dict[str, int] = field(default_factory=dict)  # input -> reroute id
    mode_override: int | None = None  # an instance's mode, inherited by its inner nodes
    # ComfyUI input name -> the slot of the subgraph input feeding it (for subgraph_fold.py)
    from_inputs: dict[str, int] = field(default_factory=dict)


@dataclass
class Instance:
    """A subgraph instance as flattening met it, so subgraph_fold.py can fold it back."""

    id: str  # flattened: "10" or "10:3"
    definition: dict[str, Any]  # the ComfyUI definition
    data: dict[str, Any]  # the instance node as the file wrote it
    where: str
    from_inputs: dict[int, int]  # own input slot -> slot of the enclosing subgraph's input
    outputs: dict[int, Source]  # output slot -> what feeds it inside (flat ids, unresolved)


@dataclass
class Flattened:
    nodes: list[FlatNode] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # one per subgraph instance
    instances: list[Instance] = field(default_factory=list)  # in reading order, outer first


Source = RawLink | LiteralValue | None  # what feeds a subgraph input


def parse_links(raw: Any, where: str, extensions: dict[int, int]) -> dict[int, EditorLink]:
    """A graph's link table by link id; `extensions` maps link id -> parent reroute (0.4)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ComfyFormatError(where, f"expected a list of links, got {describe(raw)}")
    links: dict[int, EditorLink] = {}
    for index, entry in enumerate(raw):
        at = f"{where}[{index}]"
        if isinstance(entry, list) and len(entry) >= 6:
            values = dict(zip(_LINK_FIELDS, entry, strict=False))
            parent = extensions.get(entry[0]) if isinstance(entry[0], int) else None
        elif isinstance(entry, dict):
            values, parent = entry, entry.get("parentId")
        else:
            raise ComfyFormatError(
                at,
                "expected [id, from_node, from_slot, to_node, to_slot, type] or "
                f"{{id, origin_id, origin_slot, target_id, target_slot, type}}, got {describe(entry)}",
            )
        link = _link(values, parent, at)
        links[link.id] = link
    return links


def _link(values: dict[str, Any], parent: Any, at: str) -> EditorLink:
    for name in ("id", "origin_slot", "target_slot"):
        value = values.get(name)
        if isinstance(value, str) and value.isdigit():
            values = {**values, name: int(value)}
        elif not isinstance(value, int) or isinstance(value, bool):
            raise ComfyFormatError(
                f"{at}.{name}", f"expected a whole number, got {describe(value)}"
            )
    for name in ("origin_id", "target_id"):
        if not isinstance(values.get(name), (int, str)) or isinstance(values.get(name), bool):
            raise ComfyFormatError(
                f"{at}.{name}", f"expected a node id, got {describe(values.get(name))}"
            )
    return EditorLink(
        id=values["id"],
        origin=str(values["origin_id"]),
        origin_slot=values["origin_slot"],
        target=str(values["target_id"]),
        target_slot=values["target_slot"],
        type=str(values.get("type", "*")),
        parent_reroute=parent if isinstance(parent, int) and not isinstance(parent, bool) else None,
        where=at,
    )


def node_list(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ComfyFormatError(where, f"expected a list of nodes, got {describe(raw)}")
    for index, node in enumerate(raw):
        if not isinstance(node, dict):
            raise ComfyFormatError(
                f"{where}[{index}]", f"expected a node object, got {describe(node)}"
            )
        if not isinstance(node.get("id"), (int, str)) or isinstance(node.get("id"), bool):
            raise ComfyFormatError(
                f"{where}[{index}].id", f"expected a node id, got {describe(node.get('id'))}"
            )
        if not isinstance(node.get("type"), str) or not node["type"]:
            raise ComfyFormatError(
                f"{where}[{index}].type", f"expected a class name, got {describe(node.get('type'))}"
            )
    return raw


def flatten(document: dict[str, Any], extensions: dict[int, int]) -> Flattened:
    definitions = _definitions(document)
    flat = Flattened()
    top = _Level(flat, definitions, prefix="", where="", inputs=[], depth=0)
    top.read(document.get("nodes"), parse_links(document.get("links"), "links", extensions))
    aliases = top.aliases
    for node in flat.nodes:  # links into an instance's output go to what feeds it inside
        for name, link in node.links.items():
            seen = 0
            while link.node in top.instances:
                target = aliases.get((link.node, link.output))
                if not isinstance(target, RawLink):
                    raise ComfyFormatError(
                        link.where,
                        f'links from output {link.output} of subgraph node "{link.node}", '
                        "which no link inside feeds",
                    )
                link, seen = target, seen + 1
                if seen > len(aliases):
                    raise ComfyFormatError(link.where, "subgraph outputs feed each other in a loop")
            node.links[name] = link
    return flat


def _definitions(document: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    raw = {} if document.get("definitions") is None else document["definitions"]
    if not isinstance(raw, dict):
        raise ComfyFormatError("definitions", f"expected an object, got {describe(raw)}")
    subgraphs = [] if raw.get("subgraphs") is None else raw["subgraphs"]
    if not isinstance(subgraphs, list):
        raise ComfyFormatError(
            "definitions.subgraphs", f"expected a list, got {describe(subgraphs)}"
        )
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for index, subgraph in enumerate(subgraphs):
        where = f"definitions.subgraphs[{index}]"
        if not isinstance(subgraph, dict) or not isinstance(subgraph.get("id"), str):
            raise ComfyFormatError(where, "expected a subgraph object with a string id")
        found[subgraph["id"]] = (subgraph, where)
    return found


class _Level:
    """One graph (the top level or a subgraph instance's inside) being read."""

    def __init__(
        self,
        flat: Flattened,
        definitions: dict[str, tuple[dict[str, Any], str]],
        prefix: str,
        where: str,
        inputs: list[Source],
        depth: int,
        mode: int | None = None,
    ) -> None:
        self.flat, self.definitions = flat, definitions
        self.prefix, self.where, self.inputs, self.depth, self.mode = (
            prefix,
            where,
            inputs,
            depth,
            mode,
        )
        self.outputs: dict[int, Source] = {}  # this subgraph's outputs, by slot
        self.aliases: dict[tuple[str, int], Source] = {}  # (instance id, output slot) -> source
        self.instances: set[str] = set()  # ids of subgraph instances, at any depth

    def at(self, suffix: str) -> str:
        return f"{self.where}.{suffix}" if self.where else suffix

    def read(self, raw_nodes: Any, links: dict[int, EditorLink]) -> None:
        nodes = node_list(raw_nodes, self.at("nodes"))
        ids = {str(node["id"]) for node in nodes}
        if len(ids) != len(nodes):
            raise ComfyFormatError(self.at("nodes"), "two nodes share an id")
        for link in links.values():
            if link.origin not in ids and link.origin != str(INPUT_NODE):
                raise ComfyFormatError(
                    link.where, f'links from node "{link.origin}", which the workflow does not have'
                )
            if link.target == str(OUTPUT_NODE):
                self.outputs[link.target_slot] = self.source(link)
        for index, node in enumerate(nodes):
            where = f"{self.at('nodes')}[{index}]"
            if node["type"] in self.definitions:
                self._instance(node, where, links)
            else:
                self._node(node, where, links)

    def source(self, link: EditorLink) -> Source:
        if link.origin == str(INPUT_NODE):
            if link.origin_slot >= len(self.inputs):
                raise ComfyFormatError(
                    link.where,
                    f"links from subgraph input {link.origin_slot}, which does not exist",
                )
            return self.inputs[link.origin_slot]
        return RawLink(self.prefix + link.origin, link.origin_slot, link.where)

    def incoming(
        self, node: dict[str, Any], where: str, links: dict[int, EditorLink]
    ) -> list[tuple[int, str, EditorLink | None]]:
        """(index, input name, link) for each entry of the node's `inputs[]`."""
        entries = node.get("inputs") or []
        if not isinstance(entries, list):
            raise ComfyFormatError(f"{where}.inputs", f"expected a list, got {describe(entries)}")
        found: list[tuple[int, str, EditorLink | None]] = []
        for index, entry in enumerate(entries):
            at = f"{where}.inputs[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ComfyFormatError(at, f"expected {{name, type, link}}, got {describe(entry)}")
            widget = entry.get("widget")
            name = (
                widget["name"] if isinstance(widget, dict) and "name" in widget else entry["name"]
            )
            link_id = entry.get("link")
            if link_id is None:
                found.append((index, str(name), None))
                continue
            if link_id not in links:
                raise ComfyFormatError(f"{at}.link", f"link {link_id!r} is not in the links table")
            found.append((index, str(name), links[link_id]))
        return found

    def _node(self, node: dict[str, Any], where: str, links: dict[int, EditorLink]) -> None:
        flat = FlatNode(self.prefix + str(node["id"]), where, node)
        if self.mode is not None:
            flat.mode_override = self.mode
        for _index, name, link in self.incoming(node, where, links):
            if link is None:
                continue
            source = self.source(link)
            if link.origin == str(INPUT_NODE):
                flat.from_inputs[name] = link.origin_slot
            if isinstance(source, RawLink):
                flat.links[name] = source
                if link.parent_reroute is not None and not self.prefix:
                    flat.native_reroutes[name] = link.parent_reroute
            elif source is not None:
                flat.promoted[name] = source
        self.flat.nodes.append(flat)

    def _instance(self, node: dict[str, Any], where: str, links: dict[int, EditorLink]) -> None:
        if self.depth >= MAX_DEPTH:
            raise ComfyFormatError(
                where, f"subgraphs nest deeper than {MAX_DEPTH} levels (a loop?)"
            )
        definition, definition_where = self.definitions[node["type"]]
        instance_id = self.prefix + str(node["id"])
        sources = self._instance_inputs(node, where, links)
        record = Instance(instance_id, definition, node, where, self._from_inputs(node, links), {})
        self.flat.instances.append(record)
        mode = node.get("mode") if node.get("mode") not in (None, 0) else self.mode
        inner = _Level(
            self.flat,
            self.definitions,
            f"{instance_id}:",
            definition_where,
            sources,
            self.depth + 1,
            mode if isinstance(mode, int) else None,
        )
        first = len(self.flat.nodes)
        inner_links = parse_links(definition.get("links"), f"{definition_where}.links", {})
        inner.read(definition.get("nodes"), inner_links)
        record.outputs = dict(inner.outputs)
        for slot, source in inner.outputs.items():
            self.aliases[(instance_id, slot)] = source
        self.aliases.update(inner.aliases)
        self.instances |= inner.instances | {instance_id}
        self._place(node, definition, self.flat.nodes[first:])

    def _instance_inputs(
        self, node: dict[str, Any], where: str, links: dict[int, EditorLink]
    ) -> list[Source]:
        """What feeds each of the instance's inputs: a link, a widget value, or nothing."""
        values = node.get("widgets_values")
        widget_values = list(values) if isinstance(values, list) else []
        sources: list[Source] = []
        widget_index = 0
        for index, _name, link in self.incoming(node, where, links):
            entry = node["inputs"][index]
            value: Source = None
            if isinstance(entry.get("widget"), dict):
                if widget_index < len(widget_values):
                    value = check_literal(
                        widget_values[widget_index], f"{where}.widgets_values[{widget_index}]"
                    )
                widget_index += 1
            sources.append(self.source(link) if link is not None else value)
        return sources

    def _from_inputs(self, node: dict[str, Any], links: dict[int, EditorLink]) -> dict[int, int]:
        """Which of the instance's inputs the enclosing subgraph's inputs feed (slot -> slot)."""
        found: dict[int, int] = {}
        for index, entry in enumerate(node.get("inputs") or []):
            link_id = entry.get("link") if isinstance(entry, dict) else None
            link = links.get(link_id) if isinstance(link_id, int) else None
            if link is not None and link.origin == str(INPUT_NODE):
                found[index] = link.origin_slot
        return found

    def _place(
        self, node: dict[str, Any], definition: dict[str, Any], inner: list[FlatNode]
    ) -> None:
        """Move the inner nodes to the instance's place and frame them in a group."""
        placed = [n for n in inner if _vector(n.data.get("pos"))]
        if not placed or not _vector(node.get("pos")):
            return
        origin: list[float] = node["pos"]
        left = min(n.data["pos"][0] for n in placed)
        top = min(n.data["pos"][1] for n in placed)
        corners = []
        for flat in placed:
            x, y = flat.data["pos"]
            moved = [origin[0] + x - left, origin[1] + y - top]
            flat.data = {**flat.data, "pos": moved}
            size: Any = flat.data.get("size")
            width, height = size if _vector(size) else (200, 100)
            corners.append((moved[0] + width, moved[1] + height))
        right = max(x for x, _y in corners)
        bottom = max(y for _x, y in corners)
        margin, title = 20, 40
        self.flat.groups.append(
            {
                "title": str(node.get("title") or definition.get("name") or "Subgraph"),
                "rect": [
                    origin[0] - margin,
                    origin[1] - margin - title,
                    right - origin[0] + 2 * margin,
                    bottom - origin[1] + 2 * margin + title,
                ],
                "subgraph": {"id": definition.get("id"), "instance": self.prefix + str(node["id"])},
            }
        )


def _vector(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
