"""The cost budget: a job's peak memory and work, estimated along the plan before it runs.

The walk visits the nodes the output nodes need, dependencies first (`graph/plan.py`), and
asks each spec's `cost` function (`graph/cost.py`) what it will cost given its literal inputs
and the estimates its upstream outputs carry. A node without a cost function passes on, for
each LATENT or IMAGE output, its first input of the same type (same size: an assumption a
pack can correct by declaring its cost).

The model of memory follows the executor: every output stays referenced until the run ends,
model weights stay resident, and one node runs at a time. So at node i:

* device memory = weights loaded so far + the node's working set;
* host memory   = outputs held so far (LATENT and IMAGE, float32) + the node's host working set;
* on a CPU the two are one pool and add up.

When the engine manages residency (the budget's `residency_bytes` is set: see
`engine/residency.py`), weights live at a CPU home and only the models a node's inputs hold
are on the device while it runs (`graph/placement.py`): device memory at node i is then
those models, as the memory manager places them (loaded whole, or streamed: their largest
block), plus the node's working set; host memory counts every model loaded so far, since
their home copies stay. Without it the numbers above hold unchanged.

The peak over the walk is compared with the budget; so is the job's total work in
megapixel-steps. A refusal names the node whose inputs set the size of the largest tensor at
the peak (the one to change), the estimate, and the config key that sets the budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from latentloom.graph.cost import Batch, Cost, CostQuery, Estimate, ModelFiles, format_bytes
from latentloom.graph.placement import Carries, Placement, carry, held, linked_models, place
from latentloom.graph.plan import plan
from latentloom.graph.workflow import Link, Workflow
from latentloom.node import NodeSpec, SocketType
from latentloom.registry import Registry

TENSOR_SOCKETS = (SocketType.LATENT, SocketType.IMAGE)


@dataclass(frozen=True)
class CostBudget:
    memory_bytes: int  # host memory (RAM)
    device_memory_bytes: int | None  # accelerator memory; None: the device computes in RAM
    work_megapixel_steps: float
    compute_bytes: int = 2  # bytes per number the models compute in (4 on the CPU)
    # The device budget the memory manager keeps models within, set by the engine when it
    # manages residency (`residency.manages`); None: every loaded model stays on the device.
    residency_bytes: int | None = None

    def with_residency(self, residency_bytes: int) -> CostBudget:
        """This budget for an engine whose memory manager keeps models within `residency_bytes`."""
        return dataclasses.replace(self, residency_bytes=residency_bytes)


@dataclass(frozen=True)
class BudgetRefusal:
    node: str
    code: str  # "over_budget", "over_limit" or "cost_failed"
    input: str | None
    message: str  # without the node label, which the caller adds


class NoFiles:
    """Sizes unknown: model weights and loaded images count as nothing."""

    def size(self, folder: str, name: str) -> int | None:
        return None

    def image_size(self, name: str) -> tuple[int, int] | None:
        return None


@dataclass
class JobEstimate:
    costs: dict[str, Cost] = field(default_factory=dict)  # plan order
    estimates: dict[tuple[str, str], Estimate] = field(default_factory=dict)  # (node, output)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)  # linked widget values
    memory_left: dict[str, int] = field(default_factory=dict)  # CostQuery.memory_left by node
    placements: dict[str, Placement] = field(default_factory=dict)  # managed residency only
    device_peak: int = 0
    device_peak_node: str | None = None
    host_peak: int = 0
    host_peak_node: str | None = None
    work: float = 0.0
    refusals: list[BudgetRefusal] = field(default_factory=list)


def estimate(
    workflow: Workflow,
    registry: Registry,
    files: ModelFiles | None = None,
    *,
    compute_bytes: int = 2,
    one_pool: bool = False,
    budget: CostBudget | None = None,
) -> JobEstimate:
    """Walk what the output nodes need; the workflow must be acyclic.

    With a `budget`, each node's query says how much of it the node's working set may use.
    """
    files = files or NoFiles()
    result = JobEstimate()
    targets = [n for n, node in workflow.nodes.items() if _is_output(registry.get(node.type))]
    residency = budget.residency_bytes if budget is not None else None
    carries: Carries = {}
    weights = outputs_held = 0
    for node_id in plan(workflow, targets):
        spec = registry.get(workflow.nodes[node_id].type)
        if spec is None:
            continue
        linked = linked_models(workflow, node_id, spec, carries)
        models = held(carried_by for _, carried_by in linked)
        placed = place(models, residency).bytes if residency is not None else None
        left = _memory_left(budget, one_pool, weights, outputs_held, placed)
        query = _query(workflow, node_id, spec, result, files, compute_bytes, left)
        if left is not None:
            result.memory_left[node_id] = left
        cost = _cost(spec, query, result)
        result.costs[node_id] = cost
        for name, value in cost.outputs.items():
            result.estimates[(node_id, name)] = value
        for refusal in cost.refusals:
            result.refusals.append(
                BudgetRefusal(node_id, "over_limit", refusal.input, refusal.message)
            )
        own = carry(node_id, spec, linked, cost, carries)
        weights += cost.weights_bytes
        outputs_held += _held_bytes(spec, cost)
        host = outputs_held + cost.host_working_bytes
        if residency is None:
            device = weights + cost.working_bytes
        else:
            # As `Residency.prepare`: the node's working set is left free, the models get the rest.
            placement = place((*models, *own), max(residency - cost.working_bytes, 0))
            result.placements[node_id] = placement
            device, host = placement.bytes + cost.working_bytes, host + weights
        if one_pool:
            device, host = 0, device + host
        if device > result.device_peak:
            result.device_peak, result.device_peak_node = device, node_id
        if host > result.host_peak:
            result.host_peak, result.host_peak_node = host, node_id
        result.work += cost.work
    return result


def _is_output(spec: NodeSpec | None) -> bool:
    return spec is not None and spec.output_node


def _query(
    workflow: Workflow,
    node_id: str,
    spec: NodeSpec,
    result: JobEstimate,
    files: ModelFiles,
    compute_bytes: int,
    memory_left: int | None = None,
) -> CostQuery:
    node = workflow.nodes[node_id]
    literals: dict[str, Any] = {}
    upstream: dict[str, Estimate] = {}
    for spec_input in spec.inputs:
        value = node.inputs.get(spec_input.name, spec_input.default)
        if isinstance(value, Link):
            source = result.estimates.get((value.node, value.output))
            if source is not None:
                upstream[spec_input.name] = source
            if source is not None and not isinstance(source, Batch) and spec_input.is_widget:
                literals[spec_input.name] = source.value
                result.resolved.setdefault(node_id, {})[spec_input.name] = source.value
        elif value is not None:
            literals[spec_input.name] = value
    return CostQuery(node_id, literals, upstream, files, compute_bytes, memory_left)


def _memory_left(
    budget: CostBudget | None, one_pool: bool, weights: int, held: int, placed: int | None
) -> int | None:
    """What a node's working set may take before its pool passes the budget (`placed`: the
    bytes its models take on the device when residency is managed, else None)."""
    if budget is None:
        return None
    if one_pool or budget.device_memory_bytes is None:
        return budget.memory_bytes - weights - held - (placed or 0)
    return budget.device_memory_bytes - (weights if placed is None else placed)


def _cost(spec: NodeSpec, query: CostQuery, result: JobEstimate) -> Cost:
    if spec.cost is None:
        return _passed_through(spec, query)
    try:
        return spec.cost(query)
    except Exception as error:  # a pack's estimator is broken: say so rather than guess
        result.refusals.append(
            BudgetRefusal(
                query.node_id,
                "cost_failed",
                None,
                f"its cost estimate failed ({type(error).__name__}: {error}); "
                f"the pack that declares {spec.id!r} needs fixing",
            )
        )
        return Cost()


def _passed_through(spec: NodeSpec, query: CostQuery) -> Cost:
    outputs: dict[str, Estimate] = {}
    for output in spec.outputs:
        if output.type not in TENSOR_SOCKETS:
            continue
        same = (i.name for i in spec.inputs if i.type == output.type and query.batch(i.name))
        first = next(same, None)
        if first is not None:
            outputs[output.name] = query.upstream[first]
    return Cost(outputs=outputs)


def _held_bytes(spec: NodeSpec, cost: Cost) -> int:
    total = 0
    for output in spec.outputs:
        value = cost.outputs.get(output.name)
        if isinstance(value, Batch) and output.type == SocketType.LATENT:
            total += value.latent_bytes
        elif isinstance(value, Batch) and output.type == SocketType.IMAGE:
            total += value.image_bytes
    return total


def over_budget(
    job: JobEstimate, workflow: Workflow, registry: Registry, budget: CostBudget
) -> list[BudgetRefusal]:
    """The job's peaks and work against the budget: one refusal for each that is exceeded."""
    refusals = []
    pools = [(job.host_peak, job.host_peak_node, budget.memory_bytes, "memory_budget_bytes", "")]
    if budget.device_memory_bytes is not None:
        pools.append(
            (
                job.device_peak,
                job.device_peak_node,
                budget.device_memory_bytes,
                "device_memory_budget_bytes",
                "device ",
            )
        )
    for peak, peak_node, limit, key, kind in pools:
        if peak_node is None or peak <= limit:
            continue
        named, size = _culprit(job, workflow, registry, peak_node)
        where = "" if named == peak_node else f" at node {_label(workflow, registry, peak_node)}"
        placed = _placed_note(job.placements.get(peak_node), workflow, registry)
        refusals.append(
            BudgetRefusal(
                named,
                "over_budget",
                None,
                f"{size}needs an estimated {format_bytes(peak)} of {kind}memory{where}"
                f"{placed}; the budget is {format_bytes(limit)} ({key} in the config file)",
            )
        )
    if job.work > budget.work_megapixel_steps:
        node_id = max(job.costs, key=lambda n: job.costs[n].work)
        refusals.append(
            BudgetRefusal(
                node_id,
                "over_budget",
                None,
                f"the job needs {job.work:,.0f} megapixel-steps of work (steps x images x "
                f"megapixels; {job.costs[node_id].work:,.0f} here); the budget is "
                f"{budget.work_megapixel_steps:,.0f} (work_budget_megapixel_steps in the "
                "config file)",
            )
        )
    return refusals


def _placed_note(placement: Placement | None, workflow: Workflow, registry: Registry) -> str:
    """Under managed residency: how much of the peak is model weights, and what streams."""
    if placement is None or not placement.bytes:
        return ""
    streamed = ", ".join(_label(workflow, registry, node) for node in placement.streamed)
    how = f", streaming the model of {streamed}" if streamed else ""
    return f" ({format_bytes(placement.bytes)} of it model weights{how})"


def _culprit(
    job: JobEstimate, workflow: Workflow, registry: Registry, peak_node: str
) -> tuple[str, str]:
    """The node whose inputs set the largest tensor at the peak, and that tensor's size."""
    node = workflow.nodes[peak_node]
    batches: list[Batch] = [
        b for b in job.costs[peak_node].outputs.values() if isinstance(b, Batch)
    ]
    for value in node.inputs.values():
        if isinstance(value, Link):
            source = job.estimates.get((value.node, value.output))
            if isinstance(source, Batch):
                batches.append(source)
    if not batches:
        return peak_node, ""
    largest = max(batches, key=lambda b: b.width * b.height * b.count)
    return largest.origin, f"{largest.describe()} "


def _label(workflow: Workflow, registry: Registry, node_id: str) -> str:
    spec = registry.get(workflow.nodes[node_id].type)
    name = spec.display_name if spec else workflow.nodes[node_id].type
    return f'"{node_id}" ({name})'
