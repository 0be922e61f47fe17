"""Our workflow → ComfyUI's API "prompt" format, what `/prompt` takes and PNGs carry.

`{id: {"class_type", "inputs": {name: value | [source id, output index]}, "_meta": {"title"}}}`
with our node ids kept (ComfyUI takes any string), so importing the prompt back gives the
same ids. Inputs are written as ComfyUI's frontend writes them: widget values in the class's
widget order, defaults filled in (ComfyUI requires every input), neutral values for inputs
we have no counterpart for, then links.

Modes are resolved the way ComfyUI resolves them before queueing: a muted node is left
out, and so is every node that needs it on a required input (in our executor they would not
run either); a bypassed node is left out and each link from it goes to the source of the
input it passes through (the input at the same index if its type matches, else the first
input of that type). Our value nodes (ComfyUI's editor-only Primitive nodes) are written into
the inputs they feed, and notes are left out, as ComfyUI's frontend does. Nodes ComfyUI
cannot run, and those that need them, are left out and listed in the report.
"""

from __future__ import annotations

from typing import Any

from latentloom.graph.workflow import Link, LiteralValue, Workflow
from latentloom.interop.comfy.export_common import ExportPlan, Target, single
from latentloom.interop.comfy.report import ExportReport
from latentloom.registry import Registry


def export_api(workflow: Workflow, registry: Registry) -> tuple[dict[str, Any], ExportReport]:
    """The ComfyUI API prompt for everything in `workflow` that ComfyUI can run."""
    report = ExportReport(format="comfy-api")
    plan = ExportPlan(workflow, registry, report)
    resolver = _Resolver(plan)
    resolver.drop_unrunnable()
    prompt: dict[str, Any] = {}
    for node_id, target in plan.targets.items():
        if target.node.mode == "run" and target.role in ("node", "placeholder"):
            prompt[node_id] = _api_node(target, resolver)
    plan.finish(list(prompt))
    return prompt, report


class _Resolver:
    """Where each link really comes from once muted and bypassed nodes are gone."""

    def __init__(self, plan: ExportPlan) -> None:
        self.plan = plan
        self.muted = {n for n, t in plan.targets.items() if t.node.mode == "mute"}

    def source(self, link: Link) -> tuple[str, int] | None:
        """`(ComfyUI source id, output index)`, or None when nothing ComfyUI runs feeds it."""
        end, last = self._follow(link)
        target = self.plan.targets.get(end)
        if target is None or end in self.muted or target.node.mode == "bypass":
            return None
        index = target.output_index(last.output)
        return (end, index) if index is not None and target.role != "value" else None

    def literal(self, link: Link) -> LiteralValue | None:
        """The value a value node hands over this link, or None when it comes from elsewhere."""
        end, _last = self._follow(link)
        target = self.plan.targets.get(end)
        if target is None or target.role != "value" or end in self.muted:
            return None
        return target.value()

    def _follow(self, link: Link) -> tuple[str, Link]:
        """The node a link starts from once bypassed nodes pass it through, and its last hop."""
        seen: set[str] = set()
        while link.node not in seen:
            seen.add(link.node)
            target = self.plan.targets.get(link.node)
            if target is None or link.node in self.muted or target.node.mode != "bypass":
                break
            index = target.output_index(link.output)
            through = _passed_through(target, index) if index is not None else None
            if through is None:
                break
            link = through
        return link.node, link

    def drop_unrunnable(self) -> None:
        """Leave out, transitively, the nodes a required input of which nothing can feed."""
        changed = True
        while changed:
            changed = False
            for node_id, target in list(self.plan.targets.items()):
                if target.node.mode != "run" or node_id in self.muted:
                    continue
                for name, value in target.comfy_inputs().items():
                    if not isinstance(value, Link) or not target.required(name):
                        continue
                    if self.source(value) is None and self.literal(value) is None:
                        self._drop(node_id, name, value)
                        changed = True
                        break

    def _drop(self, node_id: str, name: str, link: Link) -> None:
        end, last = self._follow(link)
        if end in self.muted:
            self.muted.add(node_id)  # muted in effect: our executor would not run it either
            return
        nodes, target = self.plan.workflow.nodes, self.plan.targets.get(end)
        if end not in nodes:
            why = f"links to node {end!r}, which the workflow does not have"
        elif target is None:
            why = f"needs node {end!r} ({nodes[end].type}), which ComfyUI cannot run"
        elif target.node.mode == "bypass":
            why = (
                f"needs bypassed node {end!r} to pass its {last.output!r} through, and no input can"
            )
        else:
            why = f"uses output {last.output!r} of node {end!r}, which {target.comfy_class} lacks"
        self.plan.left_out(node_id, f"its input {name} {why}")


def _passed_through(target: Target, output_index: int) -> Link | None:
    """The linked input a bypassed node hands to output `output_index`, as ComfyUI picks it."""
    types = target.output_types()
    if output_index >= len(types):
        return None
    wanted = types[output_index]
    linked = [
        (name, value)
        for name, value in target.comfy_inputs().items()
        if isinstance(value, Link) and target.input_type(name) == wanted
    ]
    order = list(target.sockets()) or [name for name, _ in linked]
    same_slot = order[output_index] if output_index < len(order) else None
    for name, value in linked:
        if name == same_slot:
            return value
    return linked[0][1] if linked else None


def _api_node(target: Target, resolver: _Resolver) -> dict[str, Any]:
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
        if isinstance(value, Link) and resolver.literal(value) is not None:
            value = resolver.literal(value)
        if isinstance(value, Link):
            source = resolver.source(value)
            if source is not None:  # else an optional input whose source is gone
                inputs[name] = [source[0], source[1]]
        elif value is not None and (target.entry is None or name in order):
            inputs[name] = value
    title = target.node.title or (target.spec.display_name if target.spec else target.comfy_class)
    return {"class_type": target.comfy_class, "inputs": inputs, "_meta": {"title": title}}
