"""Our workflow → ComfyUI's editor format, version 0.4: what ComfyUI's canvas opens.

Unlike the API format this keeps the picture: positions, sizes, titles, colours, modes
(muted and bypassed nodes stay, drawn as ComfyUI draws them), groups and reroutes. Nodes
get integer ids: a ComfyUI-style id ("3") keeps its number, any other id gets the next free
one (`editor_ids`). Each node lists its sockets in ComfyUI's order and, after them, the
widgets a link feeds (`widget: {name}`); `widgets_values` holds one value per widget in the
class's widget order, with the `control_after_generate` value after a seed and the upload
button's value after Load Image's file. Our reroutes (`meta.reroutes`) become ComfyUI
`Reroute` nodes, and an input drawn through one (`ui.reroutes`) is linked from it; notes
become `Note` nodes and value nodes `PrimitiveNode`s linked to the widgets they feed. Nodes
ComfyUI has no class for are left out and listed in the report.
"""

from __future__ import annotations

import heapq
from typing import Any

from latentloom.graph.workflow import Link, Workflow
from latentloom.interop.comfy.export_common import UPLOAD_VALUE, ExportPlan, Target, seed_control
from latentloom.interop.comfy.mapping import MODES_TO_COMFY, PRIMITIVE, REROUTE
from latentloom.interop.comfy.report import ExportReport
from latentloom.registry import Registry

EDITOR_VERSION = 0.4
S_AND_R = "Node name for S&R"  # ComfyUI's property naming a node's class for search/replace
REROUTE_SIZE = [75, 26]
GROUP_FONT_SIZE = 24
# Where nodes without a saved position go: the editor's grid (frontend model/layout.ts).
GRID_ORIGIN, GRID_STEP, GRID_COLUMNS = (40, 60), (300, 260), 4


def export_editor(workflow: Workflow, registry: Registry) -> tuple[dict[str, Any], ExportReport]:
    """The ComfyUI editor workflow (version 0.4) for `workflow`."""
    report = ExportReport(format="comfy-editor")
    plan = ExportPlan(workflow, registry, report)
    document = _Writer(workflow, plan).write()
    plan.finish(list(plan.targets))
    return document, report


def editor_ids(workflow: Workflow) -> dict[str, int]:
    """Our node and reroute ids → ComfyUI's integer node ids."""
    ours = [*workflow.nodes, *(str(r.get("id")) for r in _reroutes(workflow))]
    ids = {key: int(key) for key in ours if key.isdigit() and str(int(key)) == key}
    free = max(ids.values(), default=0) + 1
    for key in ours:
        if key not in ids:
            ids[key], free = free, free + 1
    return ids


def _reroutes(workflow: Workflow) -> list[dict[str, Any]]:
    found = workflow.meta.get("reroutes", [])
    return (
        [r for r in found if isinstance(r, dict) and "id" in r] if isinstance(found, list) else []
    )


class _Writer:
    def __init__(self, workflow: Workflow, plan: ExportPlan) -> None:
        self.workflow, self.plan = workflow, plan
        self.ids = editor_ids(workflow)
        self.reroutes = {str(r["id"]): r for r in _reroutes(workflow)}
        self.nodes: dict[str, dict[str, Any]] = {}  # our id -> ComfyUI node, in our order
        self.links: list[list[Any]] = []

    def write(self) -> dict[str, Any]:
        for index, (node_id, target) in enumerate(self.plan.targets.items()):
            self.nodes[node_id] = _node_shell(target, self.ids[node_id], index)
        for reroute_id, reroute in self.reroutes.items():
            self.nodes[reroute_id] = _reroute_shell(reroute, self.ids[reroute_id])
        for node_id, target in self.plan.targets.items():
            for name, value in target.comfy_inputs().items():
                if isinstance(value, Link):
                    via = target.node.ui.get("reroutes", {})
                    our_name = target.entry.ours(name) if target.entry else name
                    route = via.get(our_name) if isinstance(via, dict) else None
                    routed = isinstance(route, str) and route in self.reroutes
                    start = Link(node=str(route), output="out") if routed else value
                    self._link(start, node_id, name, target.input_type(name))
        for reroute_id, reroute in self.reroutes.items():
            source = reroute.get("input")
            if isinstance(source, dict) and {"node", "output"} <= source.keys():
                link = Link(node=str(source["node"]), output=str(source["output"]))
                self._link(link, reroute_id, "", "*")
        _number_order(list(self.nodes.values()), self.links)
        return {
            "last_node_id": max(self.ids.values(), default=0),
            "last_link_id": len(self.links),
            "nodes": list(self.nodes.values()),
            "links": self.links,
            "groups": [_group(g) for g in self.workflow.groups],
            "config": {},
            "extra": {"ds": _view(self.workflow.meta)},
            "version": EDITOR_VERSION,
        }

    def _link(self, start: Link, node_id: str, input_name: str, input_type: str) -> None:
        found = self._origin(start)
        if found is None:
            return  # from a node left out: the report lists it
        slot, link_type = found
        source = self.nodes[start.node]
        target = self.nodes[node_id]
        inputs = target["inputs"]
        entry = next((i for i in inputs if i["name"] == input_name), None)
        if entry is None:  # a linked input the placeholder's file did not list
            entry = {"name": input_name, "type": input_type, "link": None}
            inputs.append(entry)
        link_id = len(self.links) + 1
        entry["link"] = link_id
        outputs = source["outputs"]
        while len(outputs) <= slot:
            outputs.append({"name": str(len(outputs)), "type": link_type, "links": []})
        outputs[slot].setdefault("links", [])
        outputs[slot]["links"] = [*(outputs[slot]["links"] or []), link_id]
        outputs[slot]["slot_index"] = slot
        if source["type"] == PRIMITIVE:  # a Primitive node names the widget it was made for
            outputs[slot].setdefault("widget", {"name": input_name})
        if target["type"] == REROUTE:
            outputs_of_reroute = target["outputs"][0]
            if outputs_of_reroute["type"] == "*":
                outputs_of_reroute["type"] = link_type
        self.links.append(
            [link_id, source["id"], slot, target["id"], inputs.index(entry), link_type]
        )

    def _origin(self, start: Link) -> tuple[int, str] | None:
        """The output slot a link leaves from and the type it carries."""
        if start.node in self.reroutes:
            return 0, self._reroute_type(start.node, set())
        target = self.plan.targets.get(start.node)
        slot = target.output_index(start.output) if target else None
        if target is None or slot is None:
            return None
        types = target.output_types()
        return slot, types[slot] if slot < len(types) else "*"

    def _reroute_type(self, reroute_id: str, seen: set[str]) -> str:
        kept = self.reroutes[reroute_id].get("type")
        if isinstance(kept, str) and kept:
            return kept
        source = self.reroutes[reroute_id].get("input")
        if not isinstance(source, dict) or reroute_id in seen:
            return "*"
        seen.add(reroute_id)
        start = Link(node=str(source.get("node")), output=str(source.get("output")))
        found = self._origin(start) if start.node not in seen else None
        return found[1] if found else "*"


def _node_shell(target: Target, number: int, index: int) -> dict[str, Any]:
    """A ComfyUI node without its links: sockets, outputs, widget values, looks."""
    node, ui = target.node, target.node.ui
    inputs, widgets = _inputs_and_widgets(target)
    outputs = [
        {"name": kind, "type": kind, "links": [], "slot_index": slot}
        for slot, kind in enumerate(target.output_types())
    ]
    if target.entry is None:
        kept = target.comfy.get("outputs", [])
        for slot, output in enumerate(outputs):
            if slot < len(kept) and isinstance(kept[slot], dict):
                output["name"] = str(kept[slot].get("name", output["name"]))
    shell: dict[str, Any] = {
        "id": number,
        "type": target.comfy_class,
        "pos": _vector(ui.get("pos")) or _grid(index),
        "size": _vector(ui.get("size")) or _estimated_size(len(inputs), len(outputs), len(widgets)),
        "flags": {"collapsed": True} if ui.get("collapsed") else {},
        "order": 0,
        "mode": MODES_TO_COMFY[node.mode],
        "inputs": inputs,
        "outputs": outputs,
        "properties": _properties(target),
        "widgets_values": widgets,
    }
    if node.title is not None:
        shell["title"] = node.title
    for key in ("color", "bgcolor"):
        if isinstance(ui.get(key), str):
            shell[key] = ui[key]
    return shell


def _properties(target: Target) -> dict[str, Any]:
    if target.role == "note":
        return {"text": ""}
    if target.role == "value":
        return {"Run widget replace on values": False}
    return {S_AND_R: target.comfy_class}


def _inputs_and_widgets(target: Target) -> tuple[list[dict[str, Any]], list[Any] | dict[str, Any]]:
    if target.role == "note":
        return [], [target.node.inputs.get("text", "")]
    if target.role == "value":
        widgets: list[Any] = [target.value()]
        if target.output_types()[0] in ("INT", "FLOAT"):  # ComfyUI adds a control to numbers
            widgets.append(seed_control(target.node, "value"))
        return [], widgets
    if target.entry is None or target.spec is None:
        return _placeholder_inputs_and_widgets(target)
    values = target.comfy_inputs()
    inputs: list[dict[str, Any]] = [
        {"name": name, "type": target.input_type(name), "link": None} for name in target.sockets()
    ]
    widgets = []
    for name in target.entry.widget_order(target.spec):
        value = target.widget_value(name)
        if isinstance(values.get(name), Link):
            kind = target.input_type(name)
            inputs.append({"name": name, "type": kind, "link": None, "widget": {"name": name}})
            found = target.spec.input(target.entry.ours(name))
            default = found.default if found is not None else None
            value = target.entry.to_comfy(name, default) if default is not None else None
        widgets.append(value)
        if name in target.entry.seeds:
            widgets.append(seed_control(target.node, target.entry.ours(name)))
        if name in target.entry.uploads:
            widgets.append(UPLOAD_VALUE)
    return inputs, widgets


def _placeholder_inputs_and_widgets(
    target: Target,
) -> tuple[list[dict[str, Any]], list[Any] | dict[str, Any]]:
    """What the file said about a class we don't run; from an API file, its literals in order."""
    kept = target.comfy.get("inputs", [])
    inputs = [{**entry, "link": None} for entry in kept if isinstance(entry, dict)]
    widgets = target.comfy.get("widgets_values")
    if isinstance(widgets, list | dict):
        return inputs, widgets
    return inputs, [v for v in target.node.inputs.values() if not isinstance(v, Link)]


def _reroute_shell(reroute: dict[str, Any], number: int) -> dict[str, Any]:
    kind = reroute.get("type") if isinstance(reroute.get("type"), str) else "*"
    return {
        "id": number,
        "type": REROUTE,
        "pos": _vector(reroute.get("pos")) or [0, 0],
        "size": list(REROUTE_SIZE),
        "flags": {},
        "order": 0,
        "mode": 0,
        "inputs": [{"name": "", "type": "*", "link": None}],
        "outputs": [{"name": "", "type": kind, "links": [], "slot_index": 0}],
        "properties": {"showOutputText": False, "horizontal": False},
    }


def _number_order(nodes: list[dict[str, Any]], links: list[list[Any]]) -> None:
    """ComfyUI's `order`: each node's place in an execution order (sources first).

    Kahn's algorithm, taking ready nodes in document order; nodes on a cycle (validation
    reports those) go last, in document order.
    """
    position = {node["id"]: index for index, node in enumerate(nodes)}
    waiting_on = dict.fromkeys(position, 0)
    feeds: dict[int, list[int]] = {node_id: [] for node_id in position}
    for _link_id, source, _slot, target, _to_slot, _type in links:
        waiting_on[target] += 1
        feeds[source].append(target)
    ready = [position[n] for n, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    placed: list[int] = []
    while ready:
        node_id = nodes[heapq.heappop(ready)]["id"]
        placed.append(node_id)
        for target in feeds[node_id]:
            waiting_on[target] -= 1
            if waiting_on[target] == 0:
                heapq.heappush(ready, position[target])
    placed.extend(n for n in position if waiting_on[n] > 0)
    order = {node_id: index for index, node_id in enumerate(placed)}
    for node in nodes:
        node["order"] = order[node["id"]]


def _group(group: dict[str, Any]) -> dict[str, Any]:
    """Our `{id, title, rect, color?}` as ComfyUI's `{title, bounding, color?, font_size}`."""
    found: dict[str, Any] = {
        "title": group.get("title", ""),
        "bounding": list(group.get("rect", [0, 0, 0, 0])),
    }
    if isinstance(group.get("color"), str):
        found["color"] = group["color"]
    found["font_size"] = group.get("font_size", GROUP_FONT_SIZE)
    found["flags"] = group.get("flags", {})
    return found


def _view(meta: dict[str, Any]) -> dict[str, Any]:
    """ComfyUI's canvas offset and zoom: what import kept (`meta.view`), else the origin."""
    kept = meta.get("view")
    if isinstance(kept, dict) and "scale" in kept and "offset" in kept:
        return {"scale": kept["scale"], "offset": kept["offset"]}
    return {"scale": 1, "offset": [0, 0]}


def _vector(value: Any) -> list[float] | None:
    numbers = isinstance(value, list | tuple) and len(value) == 2
    if numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [value[0], value[1]]
    return None


def _grid(index: int) -> list[float]:
    column, row = index % GRID_COLUMNS, index // GRID_COLUMNS
    return [GRID_ORIGIN[0] + column * GRID_STEP[0], GRID_ORIGIN[1] + row * GRID_STEP[1]]


def _estimated_size(inputs: int, outputs: int, widgets: int) -> list[float]:
    """Roughly what ComfyUI would compute: a title bar, one row per slot pair and widget."""
    return [315, 30 + 22 * max(inputs, outputs) + 26 * widgets]
