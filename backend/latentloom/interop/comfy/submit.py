"""`POST /prompt`: read ComfyUI's request, turn its prompt into our workflow, or say why not.

The body is parsed as JSON whatever its Content-Type (ComfyUI's own examples send urllib's
default form type; browsers are kept out by the Origin check, not by the type). The prompt
goes through the importer and our validation, so a job queued this way is checked exactly
like one queued through `/api/jobs`. Every refusal is ComfyUI's 400 shape:
`{"error": {type, message, details, extra_info}, "node_errors": {id: {"errors": [...],
"dependent_outputs": [...], "class_type"}}}`, built from our validation problems with their
input names translated back to ComfyUI's and our full message in `details`.

`partial_execution_targets` (newer ComfyUI clients: run only these output nodes) becomes node
modes: every other output node is muted, so the planner skips what only they need.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from latentloom.graph.validate import Problem
from latentloom.graph.workflow import Link, Workflow, WorkflowFormatError, parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.jobs_view import COMFY_META
from latentloom.interop.comfy.mapping import BY_CLASS
from latentloom.interop.comfy.report import ComfyFormatError
from latentloom.registry import Registry

PROMPT_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
MAX_CLIENT_ID: Final = 200
# Our validation codes as ComfyUI's node error types (the rest keep our code).
ERROR_TYPES: Final = {
    "missing_input": "required_input_missing",
    "invalid_choice": "value_not_in_list",
    "model_not_found": "value_not_in_list",
    "wrong_type": "invalid_input_type",
    "type_mismatch": "return_type_mismatch",
    "unsupported_class": "missing_node_type",
    "unknown_type": "missing_node_type",
}
TOP_LEVEL: Final = {"no_output", "nothing_to_run"}


class PromptRefused(Exception):
    """A `/prompt` request that queues nothing; `body` is ComfyUI's error shape."""

    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        self.body, self.status = body, status
        super().__init__(body["error"]["message"])


def error_body(
    kind: str, message: str, details: str = "", node_errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    error = {"type": kind, "message": message, "details": details, "extra_info": {}}
    return {"error": error, "node_errors": node_errors or {}}


@dataclass(frozen=True)
class PromptRequest:
    prompt: dict[str, Any]
    client_id: str | None
    extra_data: dict[str, Any]
    front: bool
    number: int | None
    prompt_id: str | None
    targets: list[str] | None


def _refuse(message: str, details: str = "") -> PromptRefused:
    return PromptRefused(error_body("invalid_prompt", message, details))


def read_request(body: bytes) -> PromptRequest:
    """The fields of a `/prompt` body, each checked; PromptRefused names the first bad one."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _refuse("the request body is not JSON", str(error)) from None
    if not isinstance(data, dict):
        raise _refuse("the request body must be a JSON object with a 'prompt'")
    prompt = data.get("prompt")
    if prompt is None:
        raise PromptRefused(error_body("no_prompt", "No prompt provided", "no 'prompt' field"))
    if not isinstance(prompt, dict):
        raise _refuse("'prompt' must be an object of nodes by id", type(prompt).__name__)
    client_id = data.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID):
        raise _refuse(f"'client_id' must be a string of at most {MAX_CLIENT_ID} characters")
    extra_data = data.get("extra_data") or {}
    if not isinstance(extra_data, dict):
        raise _refuse("'extra_data' must be an object")
    return PromptRequest(
        prompt=prompt,
        client_id=client_id,
        extra_data=extra_data,
        front=bool(data.get("front", False)),
        number=_number(data.get("number")),
        prompt_id=_prompt_id(data.get("prompt_id")),
        targets=_targets(data.get("partial_execution_targets")),
    )


def _number(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(f"'number' must be a finite number, got {value!r}")
    return math.floor(value)


def _prompt_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not PROMPT_ID.fullmatch(value):
        raise _refuse(
            "'prompt_id' must be 1 to 100 letters, digits or _ . : - (a uuid4 string is usual)",
            repr(value)[:120],
        )
    return value


def _targets(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _refuse("'partial_execution_targets' must be a list of node ids")
    return [str(v) for v in value]


@dataclass(frozen=True)
class Prepared:
    workflow: dict[str, Any]  # our document, with the ComfyUI request under meta[COMFY_META]
    outputs: list[str]  # ComfyUI's outputs_to_execute


def prepare(
    request: PromptRequest, registry: Registry, validate: Callable[[Workflow], list[Problem]]
) -> Prepared:
    """Our workflow for a ComfyUI prompt, validated; PromptRefused with node_errors if not."""
    try:
        imported = import_api_prompt(request.prompt, registry, source="POST /prompt")
        workflow = parse_workflow(imported.workflow)
    except (ComfyFormatError, WorkflowFormatError) as error:
        raise _refuse(f"Invalid prompt: {error}", getattr(error, "where", "")) from None
    outputs = _output_nodes(workflow, registry)
    if request.targets is not None:
        unknown = [t for t in request.targets if t not in workflow.nodes]
        if unknown:
            raise _refuse(f"partial_execution_targets name nodes the prompt lacks: {unknown}")
        for node_id in outputs:
            if node_id not in request.targets:
                workflow.nodes[node_id].mode = "mute"
        outputs = [node_id for node_id in outputs if node_id in request.targets]
    problems = validate(workflow)
    if problems:
        raise PromptRefused(_problems_body(problems, request.prompt, workflow, outputs))
    document = workflow.to_json()
    document.setdefault("meta", {})[COMFY_META] = {
        "prompt": request.prompt,
        "extra_data": request.extra_data,
        "outputs_to_execute": outputs,
    }
    return Prepared(document, outputs)


def _output_nodes(workflow: Workflow, registry: Registry) -> list[str]:
    return [
        node_id
        for node_id, node in workflow.nodes.items()
        if node.mode == "run" and (spec := registry.get(node.type)) is not None and spec.output_node
    ]


def _class_of(prompt: dict[str, Any], node: str) -> str:
    entry = prompt.get(node)
    class_type = entry.get("class_type") if isinstance(entry, dict) else None
    return class_type if isinstance(class_type, str) else ""


def _dependent_outputs(workflow: Workflow, outputs: list[str]) -> dict[str, list[str]]:
    """For each node, the output nodes that need it (itself included)."""
    needed_by: dict[str, list[str]] = {}
    for output in outputs:
        stack, seen = [output], set()
        while stack:
            node_id = stack.pop()
            if node_id in seen or node_id not in workflow.nodes:
                continue
            seen.add(node_id)
            needed_by.setdefault(node_id, []).append(output)
            stack.extend(
                v.node for v in workflow.nodes[node_id].inputs.values() if isinstance(v, Link)
            )
    return needed_by


def _problems_body(
    problems: list[Problem], prompt: dict[str, Any], workflow: Workflow, outputs: list[str]
) -> dict[str, Any]:
    dependents = _dependent_outputs(workflow, outputs)
    node_errors: dict[str, Any] = {}
    top = [p for p in problems if p.node is None or p.code in TOP_LEVEL]
    for problem in problems:
        if problem.node is None or problem.code in TOP_LEVEL:
            continue
        class_type = _class_of(prompt, problem.node)
        mapping = BY_CLASS.get(class_type)
        input_name = mapping.theirs(problem.input) if mapping and problem.input else problem.input
        entry = node_errors.setdefault(
            problem.node,
            {
                "errors": [],
                "dependent_outputs": dependents.get(problem.node, []),
                "class_type": class_type,
            },
        )
        entry["errors"].append(
            {
                "type": ERROR_TYPES.get(problem.code, problem.code),
                "message": problem.message,
                "details": f"{input_name}: {problem.message}" if input_name else problem.message,
                "extra_info": {"input_name": input_name} if input_name else {},
            }
        )
    details = "; ".join(p.message for p in problems)
    if top and not node_errors:
        kind = "prompt_no_outputs" if top[0].code in TOP_LEVEL else "invalid_prompt"
        return error_body(kind, top[0].message, details)
    unsupported = sorted(
        {_class_of(prompt, p.node) for p in problems if p.node and p.code == "unsupported_class"}
    )
    if unsupported:
        message = f"Latentloom does not support the ComfyUI class(es) {', '.join(unsupported)}"
        return error_body("missing_node_type", message, details, node_errors)
    return error_body(
        "prompt_outputs_failed_validation", "Prompt outputs failed validation", details, node_errors
    )
