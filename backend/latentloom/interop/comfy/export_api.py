"""Our workflow → ComfyUI's API "prompt" format, what `/prompt` takes and PNGs carry.

`{id: {"class_type", "inputs": {name: value | [source id, output index]}, "_meta": {"title"}}}`
with our node ids kept (ComfyUI takes any string), so importing the prompt back gives the
same ids. Inputs are written as ComfyUI's frontend writes them: widget values in the class's
widget order, defaults filled in (ComfyUI requires every input), neutral values for inputs
we have no counterpart for, Load Image's `"upload": "image"`, then links.

The API format has no modes: ComfyUI's editor applies them before queueing. We apply ours
with the executor's own rewrite (`graph.modes.apply_modes`), so the prompt holds exactly the
graph our engine would run: muted nodes and what cannot run without them are gone, links out
of bypassed nodes go to the inputs they pass through. Our value nodes (ComfyUI's editor-only
Primitive nodes) are written into the inputs they feed, and notes are left out, as ComfyUI's
frontend does. Nodes ComfyUI cannot run, and those that need them, are left out and listed
in the report.
"""

from __future__ import annotations

from typing import Any

from latentloom.graph.modes import apply_modes
from latentloom.graph.workflow import Link, LiteralValue, Workflow
from latentloom.interop.comfy.export_common import (
    UPLOAD_INPUT,
    UPLOAD_VALUE,
    ExportPlan,
    Target,
    single,
)
from latentloom.interop.comfy.report import ExportReport
from latentloom.registry import Registry


def export_api(workflow: Workflow, registry: Registry) -> tuple[dict[str, Any], ExportReport]:
    """The ComfyUI API prompt for everything in `workflow` that ComfyUI can run."""
    report = ExportReport(format="comfy-api")
    plan = ExportPlan(apply_modes(workflow, registry).workflow, registry, report)
    _leave_out_what_needs_the_left_out(plan)
    prompt = {
        node_id: _api_node(target, plan)
        for node_id, target in plan.targets.items()
        if target.role in ("node", "placeholder")
    }
    unnamed = (_unnamed_widgets(plan.targets[node_id]) for node_id in prompt)
    report.warnings.extend(warning for warning in unnamed if warning)
    plan.finish(list(prompt))
    return prompt, report


def _unnamed_widgets(target: Target) -> str:
    """A placeholder from an editor file knows its widget values only by position."""
    kept = target.comfy.get("widgets_values")
    literals = [v for v in target.node.inputs.values() if not isinstance(v, Link)]
    if target.role != "placeholder" or not isinstance(kept, list) or len(literals) >= len(kept):
        return ""
    return (
        f'node "{target.id}" ({target.comfy_class}): the file stored its widget values by '
        "position and Latentloom does not know the class's input names, so the prompt lacks "
        "them; ComfyUI will ask for them"
    )


def _source(plan: ExportPlan, link: Link) -> tuple[str, int] | LiteralValue | None:
    """`[source id, output index]` for a link, a value node's value, or None if neither."""
    target = plan.targets.get(link.node)
    if target is None:
        return None
    if target.role == "value":
        return target.value()
    index = target.output_index(link.output)
    return (link.node, index) if index is not None else None


def _leave_out_what_needs_the_left_out(plan: ExportPlan) -> None:
    """Leave out, transitively, the nodes a required input of which nothing can feed."""
    changed = True
    while changed:
        changed = False
        for node_id, target in list(plan.targets.items()):
            lost = [
                (name, value)
                for name, value in target.comfy_inputs().items()
                if isinstance(value, Link)
                and target.required(name)
                and _source(plan, value) is None
            ]
            if lost:
                name, link = lost[0]
                plan.left_out(node_id, f"its input {name} {_why_lost(plan, link)}")
                changed = True


def _why_lost(plan: ExportPlan, link: Link) -> str:
    nodes, target = plan.workflow.nodes, plan.targets.get(link.node)
    if link.node not in nodes:
        return f"links to node {link.node!r}, which the workflow does not have"
    if target is None:
        return f"needs node {link.node!r} ({nodes[link.node].type}), which ComfyUI cannot run"
    return f"uses output {link.output!r} of node {link.node!r}, which {target.comfy_class} lacks"


def _api_node(target: Target, plan: ExportPlan) -> dict[str, Any]:
    values = target.comfy_inputs()
    widgets: tuple[str, ...] = ()
    if target.entry is not None and target.spec is not None:
        widgets = target.entry.widget_order(target.spec)
    order = [*widgets, *target.sockets()]
    inputs: dict[str, Any] = {}
    for name in [*order, *(n for n in values if n not in order)]:
        value = single(values[name]) if name in values else None
        if name in widgets and not isinstance(value, Link):
            value = target.widget_value(name)  # ours, our default, or the neutral value
        if isinstance(value, Link):
            source = _source(plan, value)
            if isinstance(source, tuple):
                inputs[name] = [source[0], source[1]]
            elif source is not None:
                inputs[name] = source
            # else an optional input whose source is gone: left unconnected
        elif value is not None and (target.entry is None or name in order):
            inputs[name] = value
        if target.entry is not None and name in target.entry.uploads:
            inputs[UPLOAD_INPUT] = UPLOAD_VALUE
    title = target.node.title or (target.spec.display_name if target.spec else target.comfy_class)
    return {"class_type": target.comfy_class, "inputs": inputs, "_meta": {"title": title}}
