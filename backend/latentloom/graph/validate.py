"""Validation: every problem with a workflow, found before any model work and reported at once.

Each problem names the node, the input and a stable code, with a message that says what was
expected, what arrived and what would be accepted. Nothing is "fixed" silently.

Validation checks the graph that would run: node modes are applied first (`graph/modes.py`),
so muted and bypassed nodes, and what cannot run without them, are not checked (as in
ComfyUI). A placeholder for an unsupported ComfyUI class gets one problem naming the class;
links out of it are not checked, since nothing says what it would produce.

Then the cost walk (`graph/budget.py`): explicit bounds the specs' cost functions enforce
(schedule length, frames), values arriving over links from value nodes checked like literals,
and, when nothing else is wrong, the job's estimated peak memory and work against the budget.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from latentloom.graph import placeholders
from latentloom.graph.budget import CostBudget, JobEstimate, estimate, over_budget
from latentloom.graph.cost import ModelFiles
from latentloom.graph.modes import ModesApplied, apply_modes
from latentloom.graph.plan import find_cycle
from latentloom.graph.workflow import Link, LiteralValue, Workflow
from latentloom.node import DynamicChoices, FileReference, Input, NodeSpec, WidgetType
from latentloom.nodes_limits import MAX_TEXT_LENGTH
from latentloom.registry import Registry

ChoiceLister = Callable[[str], list[str]]


class Problem(BaseModel):
    node: str | None
    input: str | None
    code: str
    message: str


class WorkflowInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("workflow is invalid:\n" + "\n".join(f"  - {p.message}" for p in problems))


def validate(
    workflow: Workflow,
    registry: Registry,
    list_choices: ChoiceLister,
    *,
    budget: CostBudget | None = None,
    files: ModelFiles | None = None,
) -> list[Problem]:
    applied = apply_modes(workflow, registry)
    return validate_applied(applied, registry, list_choices, budget=budget, files=files)


def validate_applied(
    applied: ModesApplied,
    registry: Registry,
    list_choices: ChoiceLister,
    *,
    budget: CostBudget | None = None,
    files: ModelFiles | None = None,
) -> list[Problem]:
    """The problems of the graph that runs, once `apply_modes` has rewritten it.

    Without a budget the bounds are still checked; only the memory and work totals are not.
    """
    # Listing a folder walks the disk: once per folder per validation, however many nodes ask.
    list_choices = functools.cache(list_choices)
    workflow = applied.workflow
    problems: list[Problem] = []
    for node_id, node in workflow.nodes.items():
        spec = registry.get(node.type)
        if spec is None and placeholders.is_placeholder(node):
            problems.append(_unsupported_class(node_id, placeholders.comfy_class(node)))
        elif spec is None:
            problems.append(_unknown_type(node_id, node.type, registry))
        else:
            problems.extend(_node_problems(workflow, registry, node_id, spec, list_choices))
    cycle = find_cycle(workflow)
    if cycle:
        path = " -> ".join(f'"{n}"' for n in cycle)
        problems.append(
            Problem(node=cycle[0], input=None, code="cycle", message=f"nodes {path} form a cycle")
        )
    if not _has_output(workflow, registry):
        problems.append(
            _nothing_to_run() if _has_output(applied.original, registry) else _no_output()
        )
    if cycle is None:
        problems.extend(_cost_problems(workflow, registry, list_choices, problems, budget, files))
    return problems


def _cost_problems(
    workflow: Workflow,
    registry: Registry,
    list_choices: ChoiceLister,
    found: list[Problem],
    budget: CostBudget | None,
    files: ModelFiles | None,
) -> list[Problem]:
    """Bounds, linked values and, for an otherwise valid graph, the budget."""
    one_pool = budget is not None and budget.device_memory_bytes is None
    compute_bytes = budget.compute_bytes if budget is not None else 2
    job = estimate(
        workflow, registry, files, compute_bytes=compute_bytes, one_pool=one_pool, budget=budget
    )
    problems = _linked_value_problems(workflow, registry, job, list_choices)
    # A node whose inputs are already reported wrong (e.g. steps out of range) would only be
    # refused again for the same cause.
    reported = {problem.node for problem in found}
    refusals = [refusal for refusal in job.refusals if refusal.node not in reported]
    if budget is not None and not found and not problems and not refusals:
        refusals = over_budget(job, workflow, registry, budget)
    for refusal in refusals:
        spec = registry.specs[workflow.nodes[refusal.node].type]
        where = f" input {refusal.input!r}: " if refusal.input else ": "
        problems.append(
            Problem(
                node=refusal.node,
                input=refusal.input,
                code=refusal.code,
                message=f"{_label(refusal.node, spec)}{where}{refusal.message}",
            )
        )
    return problems


def _linked_value_problems(
    workflow: Workflow, registry: Registry, job: JobEstimate, list_choices: ChoiceLister
) -> list[Problem]:
    """Widget values that arrive from value nodes meet the same rules as typed ones."""
    problems = []
    for node_id, values in job.resolved.items():
        spec = registry.specs[workflow.nodes[node_id].type]
        for name, value in values.items():
            spec_input = spec.input(name)
            found = spec_input and _literal_problem(spec_input, value, list_choices)
            if spec_input is None or not found:
                continue
            link = workflow.nodes[node_id].inputs[name]
            source = f' (from node "{link.node}")' if isinstance(link, Link) else ""
            problems.append(
                Problem(
                    node=node_id,
                    input=name,
                    code=found[0],
                    message=f"{_label(node_id, spec)} input {name!r}{source}: {found[1]}",
                )
            )
    return problems


def _has_output(workflow: Workflow, registry: Registry) -> bool:
    return any((s := registry.get(n.type)) and s.output_node for n in workflow.nodes.values())


def _no_output() -> Problem:
    return Problem(
        node=None,
        input=None,
        code="no_output",
        message="the workflow has no output node "
        "(Save Image, Preview Image, Save Animation): nothing would be produced",
    )


def _nothing_to_run() -> Problem:
    return Problem(
        node=None,
        input=None,
        code="nothing_to_run",
        message="every output node is muted or depends on a muted node: nothing would run; "
        "set a node's mode back to run",
    )


def _unsupported_class(node_id: str, class_name: str) -> Problem:
    return Problem(
        node=node_id,
        input=None,
        code="unsupported_class",
        message=f'node "{node_id}": ComfyUI class {class_name!r} is not supported by '
        "Latentloom yet; it was kept as a placeholder with its inputs and links",
    )


def _unknown_type(node_id: str, type_id: str, registry: Registry) -> Problem:
    close = difflib.get_close_matches(type_id, [spec.id for spec in registry], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return Problem(
        node=node_id,
        input=None,
        code="unknown_type",
        message=f'node "{node_id}": unknown node type {type_id!r}{hint}',
    )


def _label(node_id: str, spec: NodeSpec) -> str:
    return f'node "{node_id}" ({spec.display_name})'


def _node_problems(
    workflow: Workflow, registry: Registry, node_id: str, spec: NodeSpec, list_choices: ChoiceLister
) -> list[Problem]:
    problems: list[Problem] = []
    node = workflow.nodes[node_id]
    declared = [spec_input.name for spec_input in spec.inputs]
    for name in node.inputs:
        if name not in declared:
            problems.append(
                Problem(
                    node=node_id,
                    input=name,
                    code="unknown_input",
                    message=f"{_label(node_id, spec)} has no input {name!r}; "
                    f"its inputs are: {', '.join(declared)}",
                )
            )
    for spec_input in spec.inputs:
        value = node.inputs.get(spec_input.name)
        if value is None:
            if spec_input.required:
                problems.append(_missing(node_id, spec, spec_input))
        elif isinstance(value, Link):
            problems.extend(_link_problems(workflow, registry, node_id, spec, spec_input, value))
        else:
            message = _literal_problem(spec_input, value, list_choices)
            if message:
                code, text = message
                problems.append(
                    Problem(
                        node=node_id,
                        input=spec_input.name,
                        code=code,
                        message=f"{_label(node_id, spec)} input {spec_input.name!r}: {text}",
                    )
                )
    return problems


def _missing(node_id: str, spec: NodeSpec, spec_input: Input) -> Problem:
    what = "is not connected" if not spec_input.is_widget else "has no value"
    return Problem(
        node=node_id,
        input=spec_input.name,
        code="missing_input",
        message=f"{_label(node_id, spec)}: required input {spec_input.name!r} "
        f"({spec_input.type}) {what}",
    )


def _link_problems(
    workflow: Workflow,
    registry: Registry,
    node_id: str,
    spec: NodeSpec,
    spec_input: Input,
    link: Link,
) -> list[Problem]:
    where = f"{_label(node_id, spec)} input {spec_input.name!r}"
    source = workflow.nodes.get(link.node)
    if source is None:
        return [
            Problem(
                node=node_id,
                input=spec_input.name,
                code="missing_node",
                message=f'{where} links to node "{link.node}", which does not exist',
            )
        ]
    source_spec = registry.get(source.type)
    if source_spec is None:
        return []  # reported as unknown_type on the source node
    output = source_spec.output(link.output)
    if output is None:
        names = ", ".join(o.name for o in source_spec.outputs)
        return [
            Problem(
                node=node_id,
                input=spec_input.name,
                code="missing_output",
                message=f"{where} links to output {link.output!r} of "
                f"{_label(link.node, source_spec)}, which has outputs: {names}",
            )
        ]
    if output.type != spec_input.type:
        return [
            Problem(
                node=node_id,
                input=spec_input.name,
                code="type_mismatch",
                message=f"{where} expects {spec_input.type} but output {link.output!r} of "
                f"{_label(link.node, source_spec)} gives {output.type}",
            )
        ]
    return []


def _literal_problem(
    spec_input: Input, value: LiteralValue, list_choices: ChoiceLister
) -> tuple[str, str] | None:
    if not spec_input.is_widget:
        return (
            "missing_input",
            f"expects a link from a {spec_input.type} output, got the value {value!r}",
        )
    if isinstance(value, list):
        if not spec_input.accepts_list:
            return ("wrong_type", f"expects one {spec_input.type} value, got a list")
        if not value:
            return ("wrong_type", "expects a non-empty list")
        return next(
            filter(None, (_scalar_problem(spec_input, v, list_choices) for v in value)), None
        )
    return _scalar_problem(spec_input, value, list_choices)


def _scalar_problem(
    spec_input: Input, value: object, list_choices: ChoiceLister
) -> tuple[str, str] | None:
    kind = spec_input.type
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    type_ok = {
        WidgetType.INT: isinstance(value, int) and not isinstance(value, bool),
        WidgetType.FLOAT: numeric,
        WidgetType.STRING: isinstance(value, str),
        WidgetType.BOOLEAN: isinstance(value, bool),
        WidgetType.ENUM: isinstance(value, str),
    }[WidgetType(kind)]
    if not type_ok:
        return ("wrong_type", f"expects {kind}, got {value!r} ({type(value).__name__})")
    if numeric and not math.isfinite(value):  # type: ignore[arg-type]
        return ("out_of_range", f"{value!r} is not a finite number")
    if numeric:
        low, high = spec_input.min, spec_input.max
        if (low is not None and value < low) or (high is not None and value > high):  # type: ignore[operator]
            return ("out_of_range", f"{value!r} is outside the allowed range [{low}, {high}]")
    if kind == WidgetType.INT and isinstance(value, int):
        return _step_problem(spec_input, value)
    if kind == WidgetType.STRING and len(str(value)) > MAX_TEXT_LENGTH:
        return (
            "over_limit",
            f"{len(str(value)):,} characters; the most is {MAX_TEXT_LENGTH:,}",
        )
    if spec_input.references is not None:
        return _reference_problem(spec_input.references(value), list_choices)
    if kind == WidgetType.ENUM:
        return _choice_problem(spec_input, str(value), list_choices)
    return None


def _step_problem(spec_input: Input, value: int) -> tuple[str, str] | None:
    """An INT off its step (an image side not a multiple of 8) is refused, never floored."""
    step = int(spec_input.step or 1)
    if step <= 1:
        return None
    base = int(spec_input.min or 0)
    offset = (value - base) % step
    if offset == 0:
        return None
    below = value - offset
    counted = f"a multiple of {step}" if base % step == 0 else f"{base} plus a multiple of {step}"
    return ("off_step", f"{value} is not {counted}; use {below} or {below + step}")


def _reference_problem(
    references: Sequence[FileReference], list_choices: ChoiceLister
) -> tuple[str, str] | None:
    """Files a value names in its text (an input's `references` hook) that are not there."""
    missing = [
        reference
        for reference in references
        if not set(reference.candidates) & set(list_choices(reference.kind))
    ]
    if not missing:
        return None
    first = missing[0]
    names = ", ".join(repr(reference.name) for reference in missing)
    what = f"{first.what} {names} was" if len(missing) == 1 else f"{first.what}s {names} were"
    available = list_choices(first.kind)
    listed = ", ".join(available) if available else "none (the folders are empty)"
    return ("model_not_found", f"{what} not found in the {first.kind} folders; available: {listed}")


def _choice_problem(
    spec_input: Input, value: str, list_choices: ChoiceLister
) -> tuple[str, str] | None:
    if isinstance(spec_input.choices, DynamicChoices):
        folder = spec_input.choices.folder
        available = list_choices(folder)
        if value in available:
            return None
        listed = ", ".join(available) if available else "none (the folders are empty)"
        return (
            "model_not_found",
            f"{value!r} was not found in the {folder} folders; available: {listed}",
        )
    choices = spec_input.choices or ()
    if value in choices:
        return None
    return ("invalid_choice", f"{value!r} is not one of: {', '.join(choices)}")
