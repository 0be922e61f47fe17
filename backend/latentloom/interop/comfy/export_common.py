"""What both ComfyUI exporters share: which of our nodes become which ComfyUI class.

Every node of a workflow is sorted once into one of two kinds:

- a `Target`: a node with a class-table entry (`mapping.BY_NODE`); a placeholder
  (`type = "comfy:<Class>"`) that import kept for a class we don't run, written back as the
  file had it; or one of the editor-only nodes ComfyUI has too: a note (`Note`) or a value
  node (`PrimitiveNode`, whose value the API format writes into the inputs it feeds);
- unexportable, with the reason: a node type ComfyUI has no class for (Add Noise, Save
  Animation...), a value the class cannot hold (a list of interpolation ratios, a value
  outside `shared_values` or in `ours_only_values`, a linked `booleans` input), or a `fixed`
  input set to something ComfyUI never does (slerp in LatentBlend). These go into
  `ExportReport.unexportable` and are left out: ComfyUI cannot run them.

A `fixed` input listed in the entry's `approximates` (Encode Prompt's `weighting`) still
exports when ours differs, with a warning that ComfyUI computes it its own way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from latentloom.graph.workflow import Link, LiteralValue, Workflow, WorkflowNode
from latentloom.interop.comfy.mapping import BY_NODE, PRIMITIVE, ClassMapping
from latentloom.interop.comfy.report import (
    PLACEHOLDER_PREFIX,
    ExportReport,
    MappedNode,
    UnsupportedNode,
)
from latentloom.node import Input, NodeSpec, WidgetType
from latentloom.registry import Registry

SEED_CONTROL_DEFAULT = "fixed"  # ComfyUI's control_after_generate when ours says nothing
# ComfyUI's upload button after Load Image's file: a widget value in editor files, and an
# input `"upload": "image"` in the API prompts its frontend writes.
UPLOAD_INPUT, UPLOAD_VALUE = "upload", "image"
NOTE_NODE, NOTE_CLASS = "utility.note", "Note"
# Our value nodes: ComfyUI's Primitive node, told apart by the type it hands on.
VALUE_NODES: Final = frozenset(
    {"utility.int", "utility.float", "utility.string", "utility.boolean"}
)
Role = Literal["node", "placeholder", "note", "value"]


@dataclass(frozen=True)
class Target:
    """One of our nodes as the ComfyUI node it becomes."""

    id: str
    node: WorkflowNode
    comfy_class: str
    entry: ClassMapping | None = None  # only for role "node"
    spec: NodeSpec | None = None
    role: Role = "node"

    @property
    def comfy(self) -> dict[str, Any]:
        """What import kept about a placeholder (`ui.comfy`); the sockets of a value node."""
        if self.role == "value" and self.spec is not None:
            kind = str(self.spec.outputs[0].type)
            return {"inputs": [], "outputs": [{"name": kind, "type": kind}]}
        kept = self.node.ui.get("comfy") if self.role == "placeholder" else None
        return kept if isinstance(kept, dict) else {}

    def output_index(self, output: str) -> int | None:
        """ComfyUI's index for one of our outputs (placeholders name theirs "0", "1"...)."""
        if self.role == "value":
            return 0 if output == "value" else None
        if self.entry is None or self.spec is None:
            return int(output) if output.isdigit() else None
        names = self.entry.output_names(self.spec)
        return names.index(output) if output in names else None

    def output_types(self) -> list[str]:
        """The type of each ComfyUI output, by index."""
        if self.entry is None or self.spec is None:
            return [str(o.get("type", "*")) for o in self.comfy.get("outputs", [])]
        if self.entry.output_types is not None:
            return list(self.entry.output_types)
        types = []
        for name in self.entry.output_names(self.spec):
            found = self.spec.output(name) if name else None
            types.append(str(found.type) if found else "*")
        return types

    def input_type(self, comfy_name: str) -> str:
        """The type of a ComfyUI input, by its ComfyUI name ("*" when nobody said)."""
        if self.entry is None or self.spec is None:
            for entry in self.comfy.get("inputs", []):
                if isinstance(entry, dict) and entry.get("name") == comfy_name:
                    return str(entry.get("type", "*"))
            return "*"
        if comfy_name in self.entry.booleans:
            return "COMBO"
        found = self.spec.input(self.entry.ours(comfy_name))
        return comfy_type(found) if found else "*"

    def sockets(self) -> tuple[str, ...]:
        """ComfyUI's names of the class's link-only inputs, in its order."""
        if self.entry is None or self.spec is None:
            return ()
        if self.entry.sockets is not None:
            return self.entry.sockets
        return tuple(
            self.entry.theirs(i.name)
            for i in self.spec.inputs
            if not i.is_widget and i.name not in self.entry.ours_only
        )

    def comfy_inputs(self) -> dict[str, Link | LiteralValue]:
        """Our inputs under ComfyUI's names; inputs the class lacks are left out."""
        if self.role in ("note", "value"):
            return {}  # their one widget is a widget value, not an input ComfyUI links
        if self.entry is None:
            return dict(self.node.inputs)
        skip = set(self.entry.ours_only) | set(self.entry.fixed)
        return {
            self.entry.theirs(name): value
            for name, value in self.node.inputs.items()
            if name not in skip
        }

    def value(self) -> LiteralValue | None:
        """What a value node hands on: its value, else its default."""
        assert self.spec is not None
        value = self.node.inputs.get("value", self.spec.inputs[0].default)
        return None if isinstance(value, Link) else single(value)  # type: ignore[return-value]

    def widget_value(self, comfy_name: str) -> LiteralValue | Link | None:
        """A widget's value under its ComfyUI name: ours, else our default, else neutral."""
        assert self.entry is not None and self.spec is not None
        if comfy_name in self.entry.neutral:
            return self.entry.neutral[comfy_name][0]
        ours = self.entry.ours(comfy_name)
        value: Link | LiteralValue | None = self.node.inputs.get(ours)
        if value is None:
            found = self.spec.input(ours)
            value = found.default if found is not None else None
        value = single(value) if value is not None else None
        if value is None or isinstance(value, Link):
            return value
        return self.entry.to_comfy(comfy_name, value)

    def required(self, comfy_name: str) -> bool:
        """Whether the ComfyUI node cannot run without this input (unknown: assume so)."""
        if self.entry is None or self.spec is None:
            return True
        found = self.spec.input(self.entry.ours(comfy_name))
        return found is None or not found.optional

    def mapped(self) -> MappedNode:
        return MappedNode(node=self.id, comfy_class=self.comfy_class, type=self.node.type)


def comfy_type(spec_input: Input) -> str:
    """The type ComfyUI gives an input: sockets and widgets alike, ENUMs are COMBOs."""
    return "COMBO" if spec_input.type == WidgetType.ENUM else str(spec_input.type)


def single(value: Link | LiteralValue) -> Link | LiteralValue:
    """A one-element list as its element: ComfyUI inputs hold one value."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def seed_control(node: WorkflowNode, seed_input: str) -> str | bool:
    """The control_after_generate value import kept in `ui.seed_control`, else "fixed".

    It may be one value for the node or `{input: value}`; import keeps whatever the file said.
    """
    kept = node.ui.get("seed_control")
    if isinstance(kept, dict):
        kept = kept.get(seed_input)
    return kept if isinstance(kept, str | bool) else SEED_CONTROL_DEFAULT


class ExportPlan:
    """Our workflow sorted into ComfyUI targets and unexportable nodes, with the report."""

    def __init__(self, workflow: Workflow, registry: Registry, report: ExportReport) -> None:
        self.workflow = workflow
        self.report = report
        self.targets: dict[str, Target] = {}
        self.unexportable: dict[str, str] = {}  # node id -> reason
        for node_id, node in workflow.nodes.items():
            found = _classify(node_id, node, registry)
            if isinstance(found, Target):
                self.targets[node_id] = found
                report.warnings.extend(_approximations(found))
            else:
                self.unexportable[node_id] = found

    def left_out(self, node_id: str, reason: str) -> None:
        """Move a target to the unexportable nodes (e.g. it needs one ComfyUI cannot run)."""
        self.targets.pop(node_id, None)
        self.unexportable[node_id] = reason

    def finish(self, exported: list[str]) -> None:
        """Fill the report: the nodes written, then every node left out and why."""
        self.report.exported = [self.targets[node_id].mapped() for node_id in exported]
        for node_id, reason in self.unexportable.items():
            node = self.workflow.nodes[node_id]
            self.report.unexportable.append(
                UnsupportedNode(node=node_id, comfy_class="", reason=f"{node.type}: {reason}")
            )


def _classify(node_id: str, node: WorkflowNode, registry: Registry) -> Target | str:
    if node.type.startswith(PLACEHOLDER_PREFIX):
        kept = node.ui.get("comfy")
        class_type = kept.get("class_type") if isinstance(kept, dict) else None
        comfy_class = class_type if isinstance(class_type, str) and class_type else None
        comfy_class = comfy_class or node.type[len(PLACEHOLDER_PREFIX) :]
        return Target(node_id, node, comfy_class, role="placeholder")
    spec = registry.get(node.type)
    if spec is None:
        return "this node type is not installed, so nothing says what ComfyUI class it is"
    if node.type == NOTE_NODE:
        return Target(node_id, node, NOTE_CLASS, spec=spec, role="note")
    if node.type in VALUE_NODES:
        if any(isinstance(v, Link) for v in node.inputs.values()):
            return "its value comes over a link; ComfyUI's Primitive node holds a value itself"
        return Target(node_id, node, PRIMITIVE, spec=spec, role="value")
    entry = BY_NODE.get(node.type)
    if entry is None:
        return f"ComfyUI has no class for {spec.display_name}"
    reason = _value_problem(node, entry, spec)
    return reason if reason else Target(node_id, node, entry.comfy_class, entry, spec)


def _value_problem(node: WorkflowNode, entry: ClassMapping, spec: NodeSpec) -> str | None:
    for name, value in node.inputs.items():
        if isinstance(value, list) and len(value) != 1:
            return (
                f"{name} is a list of {len(value)} values; ComfyUI's {entry.comfy_class} "
                "takes one value"
            )
    for comfy_name, allowed in [*entry.shared_values.items(), *entry.booleans.items()]:
        ours = _our_value(node, spec, entry.ours(comfy_name))
        if isinstance(ours, Link) and comfy_name in entry.booleans:
            return (
                f"{entry.ours(comfy_name)} is linked; ComfyUI's {entry.comfy_class} takes "
                f"{' or '.join(repr(v) for v in allowed)} typed in"
            )
        if comfy_name in entry.shared_values and ours is not None and single(ours) not in allowed:
            shown = "linked" if isinstance(ours, Link) else repr(single(ours))
            return (
                f"{entry.ours(comfy_name)} is {shown}; ComfyUI's {entry.comfy_class} only "
                f"does {', '.join(repr(v) for v in allowed)}"
            )
    for comfy_name, lacking in entry.ours_only_values.items():
        ours = _our_value(node, spec, entry.ours(comfy_name))
        if ours is not None and not isinstance(ours, Link) and single(ours) in lacking:
            return (
                f"{entry.ours(comfy_name)} is {single(ours)!r}, which ComfyUI's "
                f"{entry.comfy_class} does not offer"
            )
    for name, fixed in entry.fixed.items():
        ours = _our_value(node, spec, name)
        if name in entry.approximates or ours is None or single(ours) == fixed:
            continue
        shown = "linked" if isinstance(ours, Link) else repr(single(ours))
        return f"{name} is {shown}; ComfyUI's {entry.comfy_class} only does {fixed!r}"
    return None


def _our_value(node: WorkflowNode, spec: NodeSpec, name: str) -> Link | LiteralValue | None:
    found = spec.input(name)
    if found is None:  # the class table knows an input this version of the node lacks
        return None
    value: Link | LiteralValue | None = node.inputs.get(name, found.default)
    return value


def _approximations(target: Target) -> list[str]:
    entry, spec = target.entry, target.spec
    if entry is None or spec is None:
        return []
    warnings = []
    for name in entry.approximates:
        fixed = entry.fixed[name]
        ours = _our_value(target.node, spec, name)
        if ours is not None and single(ours) != fixed:
            shown = "linked" if isinstance(ours, Link) else repr(single(ours))
            warnings.append(
                f'node "{target.id}" ({spec.display_name}): {name} is {shown}, but ComfyUI\'s '
                f"{entry.comfy_class} always uses {fixed!r}, so its picture may differ"
            )
    return warnings


def links_into(workflow: Workflow) -> Mapping[str, list[tuple[str, str, Link]]]:
    """For each source node id, the (target node, input, link) triples it feeds."""
    found: dict[str, list[tuple[str, str, Link]]] = {}
    for node_id, node in workflow.nodes.items():
        for name, value in node.inputs.items():
            if isinstance(value, Link):
                found.setdefault(value.node, []).append((node_id, name, value))
    return found
