"""Subgraphs: definitions stored once in a workflow, instances flattened before anything runs.

A workflow (version 3) may carry `subgraphs: {id: definition}`; a node of type
`subgraph:<id>` is an instance of one. A definition is a small workflow of its own:

    {"name": "Sampler block", "revision": 1,
     "inputs":  [{"name": "model", "type": "MODEL", "targets": [{"node": "k", "input": "model"}]}],
     "outputs": [{"name": "LATENT", "type": "LATENT", "node": "k", "output": "LATENT"}],
     "nodes":   {"k": {...a workflow node...}}}

An instance's input value (a literal or a link) replaces the inputs its `targets` name; an
input the instance leaves out keeps the inner node's own value, so a definition carries its
defaults. A link to an instance's output is a link to the inner node that output names.

`flatten` rewrites instances into their inner nodes, namespaced by the instance id
(`sub:k`, nested `outer:inner:k`), so the graph that validation, modes, planning and the
cache keys see has no subgraphs at all: a workflow with subgraphs runs exactly as its
flattened form. An instance's mute/bypass applies to each inner node that runs. The
editor (frontend/src/model/subgraph.ts) flattens the same way, tested against the same
fixture files. `check` finds the structural problems (unknown definition, a target or
output naming no inner node, an instance input or output the definition lacks, a
definition that contains itself) when the document is parsed, so flattening cannot fail.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from latentloom.graph.workflow import Link, LiteralValue, Workflow, WorkflowNode

INSTANCE_PREFIX: Final = "subgraph:"
SEPARATOR: Final = ":"


class InputTarget(BaseModel):
    """An inner node's input that a subgraph input feeds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(min_length=1)
    input: str = Field(min_length=1)


class SubgraphInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    targets: list[InputTarget]


class SubgraphOutput(BaseModel):
    """A subgraph output: the inner node output it exposes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    node: str = Field(min_length=1)
    output: str = Field(min_length=1)


class SubgraphDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    # Bumped each time the definition is edited; a component library keeps the latest.
    revision: int = Field(1, ge=1)
    description: str | None = None
    inputs: list[SubgraphInput] = Field(default_factory=list)
    outputs: list[SubgraphOutput] = Field(default_factory=list)
    nodes: dict[str, WorkflowNode]
    ui: dict[str, Any] = Field(default_factory=dict)


def definition_id(node_type: str) -> str | None:
    """The definition an instance type names, or None for an ordinary node type."""
    return node_type[len(INSTANCE_PREFIX) :] if node_type.startswith(INSTANCE_PREFIX) else None


def parse_definitions(raw: dict[str, Any]) -> tuple[dict[str, SubgraphDefinition], list[str]]:
    definitions: dict[str, SubgraphDefinition] = {}
    problems: list[str] = []
    for sub_id, body in raw.items():
        try:
            definitions[sub_id] = SubgraphDefinition.model_validate(body)
        except ValidationError as error:
            for detail in error.errors():
                where = ".".join(str(part) for part in detail["loc"])
                problems.append(f"subgraphs.{sub_id}.{where}: {detail['msg']}")
    return definitions, problems


def check(workflow: Workflow) -> list[str]:
    """Every structural problem of the workflow's subgraphs, each naming where and why."""
    definitions, problems = parse_definitions(workflow.subgraphs)
    if problems:
        return problems
    for sub_id, definition in definitions.items():
        at = f"subgraphs.{sub_id}"
        for item in definition.inputs:
            for target in item.targets:
                if target.node not in definition.nodes:
                    problems.append(
                        f"{at}.inputs.{item.name}: targets node {target.node!r}, "
                        f"which the subgraph does not have (it has {sorted(definition.nodes)})"
                    )
        for out in definition.outputs:
            if out.node not in definition.nodes:
                problems.append(
                    f"{at}.outputs.{out.name}: comes from node {out.node!r}, "
                    f"which the subgraph does not have (it has {sorted(definition.nodes)})"
                )
        problems.extend(_instance_problems(definition.nodes, definitions, f"{at}.nodes"))
        cycle = _containment_cycle(sub_id, definitions, [sub_id])
        if cycle:
            problems.append(f"{at}: subgraphs {' -> '.join(cycle)} contain each other")
    problems.extend(_instance_problems(workflow.nodes, definitions, "nodes"))
    return problems


def _instance_problems(
    nodes: dict[str, WorkflowNode], definitions: dict[str, SubgraphDefinition], at: str
) -> list[str]:
    problems: list[str] = []
    for node_id, node in nodes.items():
        sub_id = definition_id(node.type)
        if sub_id is None:
            continue
        if sub_id not in definitions:
            problems.append(
                f"{at}.{node_id}.type: names subgraph {sub_id!r}, which the workflow does not "
                f"define (it defines {sorted(definitions)}); add its definition under "
                '"subgraphs" or replace the node'
            )
            continue
        names = [item.name for item in definitions[sub_id].inputs]
        for name in node.inputs:
            if name not in names:
                problems.append(
                    f"{at}.{node_id}.inputs.{name}: subgraph {sub_id!r} has no input {name!r} "
                    f"(its inputs: {names})"
                )
    for node_id, node in nodes.items():
        for name, value in node.inputs.items():
            if not isinstance(value, Link) or value.node not in nodes:
                continue
            sub_id = definition_id(nodes[value.node].type)
            if sub_id is None or sub_id not in definitions:
                continue
            outputs = [out.name for out in definitions[sub_id].outputs]
            if value.output not in outputs:
                problems.append(
                    f"{at}.{node_id}.inputs.{name}: links to output {value.output!r} of "
                    f"subgraph node {value.node!r}, which has outputs {outputs}"
                )
    return problems


def _containment_cycle(
    sub_id: str, definitions: dict[str, SubgraphDefinition], path: list[str]
) -> list[str] | None:
    for node in definitions[sub_id].nodes.values():
        inner = definition_id(node.type)
        if inner is None or inner not in definitions:
            continue
        if inner in path:
            return [*path, inner]
        found = _containment_cycle(inner, definitions, [*path, inner])
        if found:
            return found
    return None


def flatten(workflow: Workflow) -> Workflow:
    """The same workflow with every subgraph instance replaced by its namespaced inner nodes.

    Assumes `check(workflow)` found nothing (parse_workflow guarantees it).
    """
    if not workflow.subgraphs:
        return workflow
    definitions, _ = parse_definitions(workflow.subgraphs)
    flat: dict[str, WorkflowNode] = {}
    aliases: dict[tuple[str, str], Link] = {}
    _expand(workflow.nodes, "", {}, "run", definitions, flat, aliases)
    for node in flat.values():
        node.inputs = {name: _resolve(value, aliases) for name, value in node.inputs.items()}
    return workflow.model_copy(update={"nodes": flat, "subgraphs": {}})


def _expand(
    nodes: dict[str, WorkflowNode],
    prefix: str,
    injected: dict[tuple[str, str], Link | LiteralValue],
    mode: str,
    definitions: dict[str, SubgraphDefinition],
    flat: dict[str, WorkflowNode],
    aliases: dict[tuple[str, str], Link],
) -> None:
    """Adds `nodes` (ids and links local to one level) to `flat` under `prefix`.

    `injected` holds values already in flat ids, from the instance this level belongs to.
    A link to an instance's output is first written against the instance's flat id and
    recorded in `aliases`, then resolved once every level is expanded.
    """
    for local_id, node in nodes.items():
        flat_id = prefix + local_id
        inputs: dict[str, Link | LiteralValue] = {
            name: _relink(value, prefix) for name, value in node.inputs.items()
        }
        for (target, name), value in injected.items():
            if target == local_id:
                inputs[name] = value
        node_mode = mode if node.mode == "run" else node.mode
        sub_id = definition_id(node.type)
        if sub_id is None:
            flat[flat_id] = node.model_copy(update={"inputs": inputs, "mode": node_mode}, deep=True)
            continue
        definition = definitions[sub_id]
        inner_prefix = flat_id + SEPARATOR
        inner_injected = {
            (target.node, target.input): inputs[item.name]
            for item in definition.inputs
            if item.name in inputs
            for target in item.targets
        }
        for out in definition.outputs:
            aliases[(flat_id, out.name)] = Link(node=inner_prefix + out.node, output=out.output)
        _expand(
            definition.nodes, inner_prefix, inner_injected, node_mode, definitions, flat, aliases
        )


def _relink(value: Link | LiteralValue, prefix: str) -> Link | LiteralValue:
    return Link(node=prefix + value.node, output=value.output) if isinstance(value, Link) else value


def _resolve(
    value: Link | LiteralValue, aliases: dict[tuple[str, str], Link]
) -> Link | LiteralValue:
    # Nested instances chain aliases (outer output -> inner instance output -> node);
    # `check` rules out containment cycles, so the chain ends.
    while isinstance(value, Link) and (value.node, value.output) in aliases:
        value = aliases[(value.node, value.output)]
    return value
