"""Cache keys: a content hash of everything that determines a node's outputs.

type + spec version + canonical literal inputs (defaults filled in, so leaving a widget out
equals setting its default) + the keys of upstream nodes + a fingerprint of every model file
named, including files a value names in its text (an input's `references`, e.g. the
embeddings in a prompt). Editor state (`title`, `ui`) is not part of it. Nondeterministic
nodes get a fresh random key, so they never hit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from latentloom.graph.workflow import Link, WorkflowNode
from latentloom.models.folders import ModelNotFoundError
from latentloom.node import DynamicChoices, FileReference, NodeSpec, WidgetType

Fingerprint = Callable[[str, str], str]  # (folder kind, file name) -> fingerprint


def literal_inputs(spec: NodeSpec, node: WorkflowNode) -> dict[str, Any]:
    """The node's literal inputs with defaults filled in and numbers in their declared type."""
    values: dict[str, Any] = {}
    for spec_input in spec.inputs:
        value = node.inputs.get(spec_input.name, spec_input.default)
        if isinstance(value, Link) or value is None:
            continue
        if spec_input.type == WidgetType.FLOAT:
            value = [float(v) for v in value] if isinstance(value, list) else float(value)
        values[spec_input.name] = value
    return values


def _reference_fingerprint(reference: FileReference, fingerprint: Fingerprint) -> str:
    for candidate in reference.candidates:
        try:
            return fingerprint(reference.kind, candidate)
        except ModelNotFoundError:
            continue
    return "missing"  # validation refuses the run before a key is needed


def node_key(
    spec: NodeSpec,
    node: WorkflowNode,
    upstream_keys: Mapping[str, str],
    fingerprint: Fingerprint,
) -> str:
    if spec.nondeterministic:
        return uuid.uuid4().hex
    literals = literal_inputs(spec, node)
    links = {
        name: [upstream_keys[value.node], value.output]
        for name, value in node.inputs.items()
        if isinstance(value, Link)
    }
    files = {
        spec_input.name: fingerprint(spec_input.choices.folder, str(literals[spec_input.name]))
        for spec_input in spec.inputs
        if isinstance(spec_input.choices, DynamicChoices) and spec_input.name in literals
    }
    for spec_input in spec.inputs:
        if spec_input.references is not None and spec_input.name in literals:
            for reference in spec_input.references(literals[spec_input.name]):
                where = f"{spec_input.name}:{reference.kind}:{reference.name}"
                files[where] = _reference_fingerprint(reference, fingerprint)
    content = {
        "type": spec.id,
        "version": spec.version,
        "literals": literals,
        "links": links,
        "files": files,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
