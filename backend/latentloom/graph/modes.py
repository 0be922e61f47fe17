"""Node modes as one graph rewrite, applied before validation and planning.

`apply_modes` turns a workflow whose nodes may be muted or bypassed into the graph that
actually runs, in which every node runs. Validation, planning and cache keys then see only
that graph, so cache keys follow modes with no special case: a bypassed node gives its
consumers exactly the keys they would have if the graph were wired around it by hand.

- mute: the node is removed and so are links from it. An input that thereby loses its source
  becomes unconnected when it is optional; when it is required, its node cannot run and is
  removed too, transitively. Nodes only the removed ones needed are left for the planner,
  which runs only what output nodes need.
- bypass: the node is removed and each link from its output O is redirected to the source of
  its first linked input (in spec order) whose type is O's type; with no such input, O behaves
  as muted. Chains of bypassed nodes resolve transitively. Placeholders (unsupported ComfyUI
  classes) are typed by what the file said (`ui.comfy`).
This is ComfyUI's behaviour for modes 2 (never) and 4 (bypass), which its editor applies
while turning a graph into a prompt. Nodes without a known spec (placeholders, unknown
types) are never removed for a lost input: we cannot tell required from optional there,
and validation reports them anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from latentloom.graph import placeholders, subgraphs
from latentloom.graph.workflow import Link, Workflow, WorkflowNode
from latentloom.registry import Registry

SkipReason = Literal["muted", "bypassed", "depends_on_muted"]


@dataclass(frozen=True)
class Skipped:
    """A node that does not run because of a mode, and why."""

    node: str
    reason: SkipReason
    message: str


@dataclass(frozen=True)
class ModesApplied:
    original: Workflow  # as written, modes and all
    workflow: Workflow  # the graph that runs: every node in it has mode "run"
    skipped: tuple[Skipped, ...]  # in the original workflow's node order


# Where a link ends up: a link into a node that runs, or None with the reason it is lost.
_Resolved = tuple[Link | None, str]


def apply_modes(workflow: Workflow, registry: Registry) -> ModesApplied:
    # Subgraph instances become their inner nodes first, so everything after sees one graph.
    workflow = subgraphs.flatten(workflow)
    if all(node.mode == "run" for node in workflow.nodes.values()):
        return ModesApplied(workflow, workflow, ())
    rewrite = _Rewrite(workflow, registry)
    return rewrite.result()


def _skipped_for_mode(node_id: str, node: WorkflowNode) -> Skipped:
    if node.mode == "mute":
        return Skipped(node_id, "muted", f'node "{node_id}" is muted')
    return Skipped(node_id, "bypassed", f'node "{node_id}" is bypassed: its inputs pass through')


class _Rewrite:
    def __init__(self, workflow: Workflow, registry: Registry) -> None:
        self.workflow, self.registry = workflow, registry
        self.removed: dict[str, Skipped] = {
            node_id: _skipped_for_mode(node_id, node)
            for node_id, node in workflow.nodes.items()
            if node.mode != "run"
        }
        # node id -> input name -> where its link ends up, for every node that is not removed
        self.links: dict[str, dict[str, _Resolved]] = {
            node_id: {
                name: self._resolve(value)
                for name, value in node.inputs.items()
                if isinstance(value, Link) and self._rewritable(node, name)
            }
            for node_id, node in workflow.nodes.items()
            if node_id not in self.removed
        }

    def _rewritable(self, node: WorkflowNode, name: str) -> bool:
        """Links on inputs a known spec lacks stay as written, for validation to report."""
        spec = self.registry.get(node.type)
        return spec is None or spec.input(name) is not None

    def _resolve(self, link: Link) -> _Resolved:
        seen: set[str] = set()
        while link.node in self.removed:
            source = self.workflow.nodes[link.node]
            if source.mode == "mute":
                return None, f'node "{link.node}", which is muted'
            if link.node in seen:
                return None, f'node "{link.node}", whose bypass loops back on itself'
            seen.add(link.node)
            through = self._pass_through(source, link.output)
            if through is None:
                return None, (
                    f'node "{link.node}", which is bypassed and has no linked input '
                    f"of the type of its output {link.output!r} to pass through"
                )
            link = through
        return link, ""

    def _pass_through(self, node: WorkflowNode, output: str) -> Link | None:
        """The link into a bypassed node that stands in for one of its outputs."""
        spec = self.registry.get(node.type)
        if spec is not None:
            declared = spec.output(output)
            wanted = str(declared.type) if declared else None
            inputs = [(i.name, str(i.type)) for i in spec.inputs]
        elif placeholders.is_placeholder(node):
            wanted = placeholders.output_type(node, output)
            inputs = placeholders.input_types(node)
        else:
            return None  # an unknown type: nothing says what its outputs are
        for name, kind in inputs:
            value = node.inputs.get(name)
            if kind == wanted and isinstance(value, Link):
                return value
        return None

    def result(self) -> ModesApplied:
        self._remove_nodes_that_lost_a_required_input()
        nodes = {
            node_id: self._rewritten(node_id, node)
            for node_id, node in self.workflow.nodes.items()
            if node_id not in self.removed
        }
        skipped = tuple(self.removed[n] for n in self.workflow.nodes if n in self.removed)
        return ModesApplied(
            self.workflow, self.workflow.model_copy(update={"nodes": nodes}), skipped
        )

    def _remove_nodes_that_lost_a_required_input(self) -> None:
        consumers: dict[str, list[str]] = {}
        for node_id, links in self.links.items():
            for link, _ in links.values():
                if link is not None:
                    consumers.setdefault(link.node, []).append(node_id)
        pending = list(reversed(self.links))  # popped in workflow order
        while pending:  # removing a node can cost its consumers a required input, and so on
            node_id = pending.pop()
            if node_id in self.removed:
                continue
            lost = self._lost_required_input(node_id, self.links[node_id])
            if lost is not None:
                name, why = lost
                message = (
                    f'node "{node_id}" cannot run: its required input {name!r} came from {why}'
                )
                self.removed[node_id] = Skipped(node_id, "depends_on_muted", message)
                pending.extend(consumers.get(node_id, ()))

    def _lost_required_input(
        self, node_id: str, links: dict[str, _Resolved]
    ) -> tuple[str, str] | None:
        spec = self.registry.get(self.workflow.nodes[node_id].type)
        if spec is None:
            return None
        for name, (link, why) in links.items():
            declared = spec.input(name)
            if declared is None or not declared.required:
                continue
            if link is None:
                return name, why
            if link.node in self.removed:
                return name, f'node "{link.node}", which does not run'
        return None

    def _rewritten(self, node_id: str, node: WorkflowNode) -> WorkflowNode:
        inputs = dict(node.inputs)
        for name, (link, _) in self.links[node_id].items():
            if link is None or link.node in self.removed:
                del inputs[name]  # optional (or of a node without a spec): now unconnected
            else:
                inputs[name] = link
        return node.model_copy(update={"inputs": inputs, "mode": "run"})
