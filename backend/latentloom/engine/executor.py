"""The executor: validate, plan, then run each needed node once, serving what it can from cache.

A run is synchronous and single-threaded; concurrency belongs to the job layer above. Node
modes are applied first, as one graph rewrite (`graph/modes.py`): validation, planning and
cache keys all see the graph that runs, and the result lists what modes skipped. Events
go to one callback; a node failure becomes a `NodeExecutionError` that names the node, its
type and the cause, and a set cancel token stops the run between nodes (and, through the
context, inside samplers at every step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import Cancelled, CancelToken, NodeContext, RunSettings
from latentloom.engine.events import (
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeStarted,
    Preview,
)
from latentloom.engine.file_sizes import FolderFiles
from latentloom.engine.keys import literal_inputs, node_key
from latentloom.engine.residency import Residency, ResidencyReport
from latentloom.fast_path import apply_to_new_models
from latentloom.graph.budget import CostBudget, estimate
from latentloom.graph.modes import Skipped, apply_modes
from latentloom.graph.plan import plan
from latentloom.graph.validate import Problem, WorkflowInvalid, validate, validate_applied
from latentloom.graph.workflow import Link, Workflow
from latentloom.node import NodeSpec
from latentloom.registry import Registry

EventSink = Callable[[Any], None]
PreviewSink = Callable[[Preview], None]


class NodeExecutionError(Exception):
    def __init__(
        self, node_id: str, node_type: str, display_name: str, cause: BaseException
    ) -> None:
        self.node_id, self.node_type, self.cause = node_id, node_type, cause
        super().__init__(
            f'node "{node_id}" ({display_name}, {node_type}) failed: {type(cause).__name__}: {cause}'
        )


@dataclass(frozen=True)
class NodeResult:
    outputs: Mapping[str, Any]
    report: Mapping[str, Any]  # what the node showed the user (saved files...), JSON-ready


@dataclass
class RunResult:
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    reports: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # of the target nodes
    skipped: list[Skipped] = field(default_factory=list)  # muted, bypassed, or needing those
    seconds: float = 0.0
    # By executed node, when the engine manages residency: what its preparation moved.
    memory: dict[str, ResidencyReport] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        registry: Registry,
        settings: RunSettings,
        cache: OutputCache,
        budget: CostBudget | None = None,  # None: bounds are checked, memory and work are not
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = cache
        self.budget = budget
        self.residency = Residency.for_device(
            settings.device,
            device_budget_bytes=settings.device_budget_bytes,
            cost_device_bytes=budget.device_memory_bytes if budget else None,
            cost_memory_bytes=budget.memory_bytes if budget else None,
        )
        if budget is not None and self.residency.manager is not None:
            # Validation then places models on the device as the memory manager will.
            self.budget = budget.with_residency(self.residency.manager.budget_bytes)

    def list_choices(self, folder: str) -> list[str]:
        return self.settings.folders.list(folder)

    def validate(self, workflow: Workflow) -> list[Problem]:
        return validate(
            workflow,
            self.registry,
            self.list_choices,
            budget=self.budget,
            files=FolderFiles(self.settings.folders),
        )

    def _memory_left(self, workflow: Workflow) -> tuple[dict[str, int], dict[str, int]]:
        """Each node's share of the budget as validation estimated it: a node that can run in
        less memory (VAE Decode, tiled) decides from the same number its cost did; and each
        node's estimated working set, which residency leaves free on the device."""
        if self.budget is None:
            return {}, {}
        job = estimate(
            workflow,
            self.registry,
            FolderFiles(self.settings.folders),
            compute_bytes=self.budget.compute_bytes,
            one_pool=self.budget.device_memory_bytes is None,
            budget=self.budget,
        )
        working = {node_id: cost.working_bytes for node_id, cost in job.costs.items()}
        return job.memory_left, working

    def run(
        self,
        workflow: Workflow,
        *,
        on_event: EventSink = lambda event: None,
        on_preview: PreviewSink = lambda preview: None,
        cancel: CancelToken | None = None,
        targets: Iterable[str] | None = None,
    ) -> RunResult:
        """Run what the target nodes (default: every output node) need; raises on any problem.

        Targets that modes keep from running are left out, and listed in `skipped`.
        """
        applied = apply_modes(workflow, self.registry)
        problems = validate_applied(
            applied,
            self.registry,
            self.list_choices,
            budget=self.budget,
            files=FolderFiles(self.settings.folders),
        )
        if problems:
            raise WorkflowInvalid(problems)
        runnable = applied.workflow
        if targets is None:
            targets = [
                n
                for n, node in runnable.nodes.items()
                if self.registry.specs[node.type].output_node
            ]
        targets = [node_id for node_id in targets if node_id in runnable.nodes]
        # Saved images carry the graph as written, modes and all, not the rewritten one.
        run = _Run(
            self, runnable, workflow.to_json(), cancel or CancelToken(), on_event, on_preview
        )
        run.result.skipped = list(applied.skipped)
        run.memory_left, run.working_bytes = self._memory_left(runnable)
        started = time.perf_counter()
        for node_id in plan(runnable, targets):
            run.cancel.check()
            run.execute(node_id)
        run.result.outputs = {node_id: run.values[node_id] for node_id in targets}
        run.result.seconds = time.perf_counter() - started
        return run.result


class _Run:
    """The state of one run: keys and values computed so far, listeners, the cancel token."""

    def __init__(
        self,
        engine: Engine,
        workflow: Workflow,
        workflow_json: dict[str, Any],
        cancel: CancelToken,
        on_event: EventSink,
        on_preview: PreviewSink,
    ) -> None:
        self.engine, self.workflow, self.cancel = engine, workflow, cancel
        self.on_event, self.on_preview = on_event, on_preview
        self.workflow_json = workflow_json
        self.keys: dict[str, str] = {}
        self.values: dict[str, Mapping[str, Any]] = {}
        self.result = RunResult()
        self.memory_left: dict[str, int] = {}  # by node, when the engine has a budget
        self.working_bytes: dict[str, int] = {}  # estimated device working set, by node

    def execute(self, node_id: str) -> None:
        node = self.workflow.nodes[node_id]
        spec = self.engine.registry.specs[node.type]
        upstream = {v.node: self.keys[v.node] for v in node.inputs.values() if isinstance(v, Link)}
        key = node_key(spec, node, upstream, self.engine.settings.folders.fingerprint)
        self.keys[node_id] = key
        cached = self.engine.cache.get(key)
        if isinstance(cached, NodeResult):
            self.result.cached.append(node_id)
            self.on_event(NodeCached(node=node_id, type=node.type, outputs=dict(cached.report)))
            node_result = cached
        else:
            self.result.executed.append(node_id)
            node_result = self._call(node_id, spec)
            self.engine.cache.put(key, node_result, keep=self.keys.values())
        self.values[node_id] = node_result.outputs
        if node_result.report:
            self.result.reports[node_id] = node_result.report

    def _call(self, node_id: str, spec: NodeSpec) -> NodeResult:
        node = self.workflow.nodes[node_id]
        arguments = literal_inputs(spec, node)
        for name, value in node.inputs.items():
            if isinstance(value, Link):
                arguments[name] = self.values[value.node][value.output]
        for spec_input in spec.inputs:
            arguments.setdefault(spec_input.name, None)  # unconnected optional inputs
        context = NodeContext(
            node_id=node_id,
            settings=self.engine.settings,
            cancel=self.cancel,
            on_progress=lambda step, total: self.on_event(
                NodeProgress(node=node_id, step=step, total=total)
            ),
            on_preview=self.on_preview,
            workflow_json=self.workflow_json,
            memory_left=self.memory_left.get(node_id),
        )
        self.on_event(NodeStarted(node=node_id, type=node.type))
        started = time.perf_counter()
        try:
            # The models this node's inputs hold go on the device first (off on the CPU).
            moved = self.engine.residency.prepare(arguments, self.working_bytes.get(node_id, 0))
            if moved is not None:
                self.result.memory[node_id] = moved
            node_result = _as_result(spec, spec.function(context, **arguments))
            # A loader's new UNet gets channels-last / compile once, here (fast_path.py).
            fast_path = context.settings.fast_path
            apply_to_new_models(node_result.outputs.values(), context.device, fast_path)
        except Cancelled:
            raise
        except Exception as error:
            self.on_event(
                NodeFailed(node=node_id, type=node.type, error=f"{type(error).__name__}: {error}")
            )
            raise NodeExecutionError(node_id, node.type, spec.display_name, error) from error
        seconds = time.perf_counter() - started
        shown = dict(node_result.report)
        moved = self.result.memory.get(node_id)
        if moved is not None and (moved.loaded or moved.offloaded or moved.streamed):
            # What residency moved for this run of the node: shown, never cached with it.
            shown["memory"] = [moved.to_json()]
        self.on_event(NodeFinished(node=node_id, type=node.type, seconds=seconds, outputs=shown))
        return node_result


def _as_result(spec: NodeSpec, returned: Any) -> NodeResult:
    """Check a node function's return value against its spec; `report` is for the user."""
    names = {output.name for output in spec.outputs}
    if not isinstance(returned, Mapping):
        raise TypeError(
            f"{spec.id} returned {type(returned).__name__}, expected a mapping of {sorted(names)}"
        )
    if set(returned) - {"report"} != names:
        raise TypeError(
            f"{spec.id} returned outputs {sorted(returned)}, its spec declares {sorted(names)}"
        )
    outputs = {name: value for name, value in returned.items() if name != "report"}
    return NodeResult(outputs, returned.get("report", {}))
