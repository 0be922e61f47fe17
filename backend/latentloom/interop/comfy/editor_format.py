"""ComfyUI's editor workflow (version 0.4 and 1) → our workflow document.

`subgraphs.flatten` gives every node with its incoming links by input name, subgraphs
expanded. Each node then becomes a `RawNode` for `convert.build_nodes`:

- a class the table maps: `widgets.read_widgets` names its positional widget values; a
  widget turned into an input takes its link, and seed controls go to `ui.seed_control`;
- `Reroute` nodes and native reroutes (`reroutes[]`, or `extra.reroutes` with
  `extra.linkExtensions` in 0.4) become our reroute points (`meta.reroutes`), the target's
  link going to the real source and `ui.reroutes[input]` naming the route;
- `Note`/`MarkdownNote` become `utility.note`;
- a `PrimitiveNode` feeding INT/FLOAT/STRING/BOOLEAN widgets becomes `utility.int` (etc.)
  linked to them; one feeding a COMBO is folded into its targets as a literal (noted);
- anything else is a placeholder carrying what the file said.

Positions, sizes, collapsed flags, titles, colours, groups and the view (`extra.ds`) are kept
as our editor stores them.
"""

from __future__ import annotations

from typing import Any, Literal

from latentloom.interop.comfy.convert import (
    ImportResult,
    RawLink,
    RawNode,
    RawReroute,
    build_nodes,
    check_literal,
    default_registry,
    describe,
    document,
    mapping_for,
    user_title,
)
from latentloom.interop.comfy.mapping import MODES_FROM_COMFY, NOTES, PRIMITIVE, REROUTE
from latentloom.interop.comfy.report import ComfyFormatError, ImportReport
from latentloom.interop.comfy.subgraph_fold import FoldError, fold_subgraphs
from latentloom.interop.comfy.subgraphs import FlatNode, flatten
from latentloom.interop.comfy.widgets import WidgetCountError, control_mode, read_widgets
from latentloom.registry import Registry

VALUE_NODES = {"INT": "utility.int", "FLOAT": "utility.float", "STRING": "utility.string"}
VALUE_NODES["BOOLEAN"] = "utility.boolean"
NATIVE_REROUTE = "reroute_{}"  # our id for a native reroute (node ids are numbers)


def import_editor_workflow(
    workflow: dict[str, Any],
    registry: Registry | None = None,
    *,
    source: str = "",
    subgraphs: Literal["keep", "flatten"] = "keep",
) -> ImportResult:
    """Our workflow for a ComfyUI editor file; unsupported classes become placeholders.

    ComfyUI subgraphs become our version-3 subgraphs (`subgraph_fold.py`), or with
    `subgraphs="flatten"` (and wherever folding cannot express one) namespaced inner nodes.
    """
    registry = registry or default_registry()
    _check_version(workflow.get("version"))
    extra = {} if workflow.get("extra") is None else workflow["extra"]
    if not isinstance(extra, dict):
        raise ComfyFormatError("extra", f"expected an object, got {describe(extra)}")
    flat = flatten(workflow, _link_extensions(extra))
    report = ImportReport(format="comfy-editor", source=source)
    reader = _Reader(registry, report, _native_reroutes(workflow, extra))
    raws = reader.read(flat.nodes)
    nodes, routes = build_nodes(raws, registry, report, reader.reroutes)
    groups = [_group(g, i) for i, g in enumerate(_list(workflow.get("groups"), "groups"))]
    flattened_notes: list[str] = []
    for index, group in enumerate(flat.groups, start=len(groups)):
        groups.append({"id": f"group_{index + 1}", **group})
        instance = group["subgraph"]["instance"]
        flattened_notes.append(
            f'subgraph "{group["title"]}" (node "{instance}") was flattened: its nodes have ids '
            f'"{instance}:<inner id>" and a group frames them'
        )
    report.notes.extend(flattened_notes)
    meta: dict[str, Any] = {}
    if routes:
        meta["reroutes"] = routes
    if "ds" in extra:
        meta["view"] = _view(extra["ds"])
    result = document(nodes, groups, meta)
    if subgraphs == "keep" and flat.instances:
        try:
            folded = fold_subgraphs(result, flat, registry)
        except FoldError as error:
            report.notes.append(f"subgraphs were flattened: {error}")
        else:
            report.notes[:] = [note for note in report.notes if note not in flattened_notes]
            for instance in flat.instances:
                name = instance.definition.get("name") or instance.definition.get("id")
                report.notes.append(f'subgraph "{name}" (node "{instance.id}") kept as a subgraph')
            return ImportResult(folded, report)
    return ImportResult(result, report)


def _check_version(version: Any) -> None:
    if version is None or version in (0.4, 1) or (isinstance(version, float) and version < 1):
        return
    raise ComfyFormatError(
        "version", f"ComfyUI editor workflow version {version!r} is not one we read (0.4 or 1)"
    )


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ComfyFormatError(where, f"expected a list, got {describe(value)}")
    return value


def _link_extensions(extra: dict[str, Any]) -> dict[int, int]:
    found = {}
    for index, entry in enumerate(_list(extra.get("linkExtensions"), "extra.linkExtensions")):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            raise ComfyFormatError(
                f"extra.linkExtensions[{index}]",
                f"expected {{id, parentId}}, got {describe(entry)}",
            )
        if isinstance(entry.get("parentId"), int):
            found[entry["id"]] = entry["parentId"]
    return found


def _native_reroutes(workflow: dict[str, Any], extra: dict[str, Any]) -> dict[int, dict[str, Any]]:
    where = "reroutes" if "reroutes" in workflow else "extra.reroutes"
    raw = _list(workflow.get("reroutes", extra.get("reroutes")), where)
    found = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            raise ComfyFormatError(
                f"{where}[{index}]", f"expected {{id, pos, ...}}, got {describe(entry)}"
            )
        found[entry["id"]] = {**entry, "where": f"{where}[{index}]"}
    return found


def _vector(value: Any, where: str) -> list[float]:
    if isinstance(value, dict) and "0" in value and "1" in value:
        value = [value["0"], value["1"]]
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return [value[0], value[1]]
    raise ComfyFormatError(where, f"expected [x, y], got {describe(value)}")


def _group(group: Any, index: int) -> dict[str, Any]:
    where = f"groups[{index}]"
    if not isinstance(group, dict):
        raise ComfyFormatError(where, f"expected a group object, got {describe(group)}")
    bounding = group.get("bounding")
    if not (
        isinstance(bounding, list)
        and len(bounding) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounding)
    ):
        raise ComfyFormatError(
            f"{where}.bounding", f"expected [x, y, width, height], got {describe(bounding)}"
        )
    result: dict[str, Any] = {"id": f"group_{index + 1}", "title": str(group.get("title", ""))}
    result["rect"] = list(bounding)
    if isinstance(group.get("color"), str):
        result["color"] = group["color"]
    if isinstance(group.get("font_size"), (int, float)):
        result["font_size"] = group["font_size"]
    return result


def _view(ds: Any) -> dict[str, Any]:
    if not isinstance(ds, dict) or not isinstance(ds.get("scale"), (int, float)):
        raise ComfyFormatError("extra.ds", f"expected {{scale, offset}}, got {describe(ds)}")
    return {"offset": _vector(ds.get("offset"), "extra.ds.offset"), "scale": ds["scale"]}


class _Reader:
    def __init__(
        self, registry: Registry, report: ImportReport, native: dict[int, dict[str, Any]]
    ) -> None:
        self.registry, self.report, self.native = registry, report, native
        self.reroutes: dict[str, RawReroute] = {}

    def read(self, flat_nodes: list[FlatNode]) -> list[RawNode]:
        self.consumers: dict[str, list[tuple[FlatNode, str]]] = {}
        for node in flat_nodes:
            for name, link in node.links.items():
                self.consumers.setdefault(link.node, []).append((node, name))
        for primitive in flat_nodes:
            if primitive.data["type"] == PRIMITIVE:
                self._fold_combo(primitive)
        raws = []
        for flat in flat_nodes:
            kind = flat.data["type"]
            self._route_natively(flat)
            if kind == REROUTE:
                self._reroute(flat)
            elif kind == PRIMITIVE:
                raw = self._primitive(flat)
                if raw is not None:
                    raws.append(raw)
            elif kind in NOTES:
                raws.append(self._note(flat))
            else:
                raws.append(self._node(flat))
        return raws

    def _route_natively(self, flat: FlatNode) -> None:
        """Send links drawn through native reroutes through our reroute points."""
        for name, reroute_id in flat.native_reroutes.items():
            if reroute_id not in self.native:
                continue
            link = flat.links[name]
            flat.links[name] = RawLink(NATIVE_REROUTE.format(reroute_id), 0, link.where)
            seen: set[int] = set()
            while reroute_id in self.native and reroute_id not in seen:
                seen.add(reroute_id)
                entry = self.native[reroute_id]
                our_id = NATIVE_REROUTE.format(reroute_id)
                parent = entry.get("parentId")
                upstream = (
                    RawLink(NATIVE_REROUTE.format(parent), 0, entry["where"])
                    if isinstance(parent, int) and parent in self.native
                    else link
                )
                if our_id not in self.reroutes:
                    pos = _vector(entry.get("pos"), f"{entry['where']}.pos")
                    self.reroutes[our_id] = RawReroute(our_id, pos, upstream)
                reroute_id = parent if isinstance(parent, int) else -1

    def _reroute(self, flat: FlatNode) -> None:
        outputs = flat.data.get("outputs") or [{}]
        kind = outputs[0].get("type") if isinstance(outputs[0], dict) else None
        source = next(iter(flat.links.values()), None)
        pos = _vector(flat.data.get("pos"), f"{flat.where}.pos")
        self.reroutes[flat.id] = RawReroute(
            flat.id, pos, source, kind if isinstance(kind, str) else None
        )

    def _primitive_value(self, flat: FlatNode) -> tuple[str, Any, Any]:
        outputs = flat.data.get("outputs") or []
        kind = outputs[0].get("type") if outputs and isinstance(outputs[0], dict) else "*"
        values = flat.data.get("widgets_values") or []
        if not isinstance(values, list):
            raise ComfyFormatError(
                f"{flat.where}.widgets_values", f"expected a list, got {describe(values)}"
            )
        value = check_literal(values[0], f"{flat.where}.widgets_values[0]") if values else None
        control = values[1] if len(values) > 1 else None
        return str(kind), value, control

    def _fold_combo(self, primitive: FlatNode) -> None:
        kind, value, _control = self._primitive_value(primitive)
        if kind in VALUE_NODES or value is None:
            return
        consumers = self.consumers.get(primitive.id, [])
        for node, name in consumers:
            del node.links[name]
            node.promoted[name] = value
        targets = ", ".join(f'{name} of "{node.id}"' for node, name in consumers)
        self.report.notes.append(
            f'Primitive node "{primitive.id}" ({kind}) was folded into its targets as the value '
            f"{value!r}: {targets or 'none'}"
        )

    def _primitive(self, flat: FlatNode) -> RawNode | None:
        kind, value, control = self._primitive_value(flat)
        if kind not in VALUE_NODES:
            return None  # folded into its targets
        if not self.consumers.get(flat.id):
            self.report.notes.append(f'Primitive node "{flat.id}" feeds nothing; it was left out')
            return None
        raw = self._shell(flat, PRIMITIVE, VALUE_NODES[kind])
        if value is not None:
            raw.inputs["value"] = value
        if control is not None and kind in ("INT", "FLOAT"):
            raw.ui["seed_control"] = {
                "value": control_mode(control, f"{flat.where}.widgets_values[1]")
            }
        return raw

    def _note(self, flat: FlatNode) -> RawNode:
        raw = self._shell(flat, flat.data["type"], "utility.note")
        values = flat.data.get("widgets_values") or [""]
        text = values[0] if isinstance(values, list) and values else ""
        raw.inputs["text"] = text if isinstance(text, str) else str(text)
        return raw

    def _node(self, flat: FlatNode) -> RawNode:
        class_type = flat.data["type"]
        raw = self._shell(flat, class_type, None)
        found = mapping_for(class_type, self.registry)
        where = f"{flat.where}.widgets_values"
        if found is not None:
            entry, spec = found
            try:
                widgets = read_widgets(entry, spec, flat.data.get("widgets_values"), where)
            except WidgetCountError as error:
                raw.unsupported_reason = f"widgets_values {error.detail}"
            else:
                raw.inputs.update(widgets.values)
                if widgets.seed_control:
                    raw.ui["seed_control"] = widgets.seed_control
        if found is None or raw.unsupported_reason:
            raw.inputs.update(self._placeholder_widgets(flat))
        raw.inputs.update(flat.promoted)
        raw.inputs.update(flat.links)
        return raw

    def _placeholder_widgets(self, flat: FlatNode) -> dict[str, Any]:
        """Literal inputs of a class we don't map, where the file names its widgets."""
        values = flat.data.get("widgets_values")
        if isinstance(values, dict):
            return {str(k): v for k, v in values.items() if _is_literal(v)}
        names = [
            entry["widget"]["name"]
            for entry in flat.data.get("inputs") or []
            if isinstance(entry, dict)
            and isinstance(entry.get("widget"), dict)
            and isinstance(entry["widget"].get("name"), str)
        ]
        if not isinstance(values, list) or len(names) != len(values):
            return {}  # the positions are unknown: ui.comfy.widgets_values keeps them
        return {name: v for name, v in zip(names, values, strict=True) if _is_literal(v)}

    def _shell(self, flat: FlatNode, class_type: str, our_type: str | None) -> RawNode:
        """A RawNode with everything but the inputs: title, mode and editor state."""
        data = flat.data
        raw = RawNode(id=flat.id, class_type=class_type, where=flat.where, our_type=our_type)
        raw.mode = _mode(data.get("mode", 0), f"{flat.where}.mode", flat.mode_override)
        title = data.get("title")
        if isinstance(title, str):
            raw.title = user_title(title, class_type, self.registry)
        if "pos" in data:
            raw.ui["pos"] = _vector(data["pos"], f"{flat.where}.pos")
        if isinstance(data.get("size"), (list, dict)):
            raw.ui["size"] = _vector(data["size"], f"{flat.where}.size")
        flags = data.get("flags")
        if isinstance(flags, dict) and flags.get("collapsed") is True:
            raw.ui["collapsed"] = True
        for key in ("color", "bgcolor"):
            if isinstance(data.get(key), str):
                raw.ui[key] = data[key]
        raw.comfy_inputs = _sockets(data.get("inputs"))
        raw.comfy_outputs = _sockets(data.get("outputs"))
        raw.widgets_values = data.get("widgets_values")
        return raw


def _is_literal(value: Any) -> bool:
    try:
        check_literal(value, "")
    except ComfyFormatError:
        return False
    return True


def _sockets(entries: Any) -> list[dict[str, str]]:
    return [
        {"name": str(entry.get("name", "")), "type": str(entry.get("type", "*"))}
        for entry in entries or []
        if isinstance(entry, dict)
    ]


def _mode(value: Any, where: str, inherited: int | None) -> str:
    if value == 0 and inherited is not None:
        value = inherited
    if isinstance(value, int) and not isinstance(value, bool) and value in MODES_FROM_COMFY:
        return MODES_FROM_COMFY[value]
    raise ComfyFormatError(
        where,
        f"expected 0 (always), 1 (on trigger), 2 (never) or 4 (bypass), got {describe(value)}",
    )
