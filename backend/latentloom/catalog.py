"""The node catalog as JSON: what the editor builds its widgets from and `latentloom nodes` prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latentloom.node import DynamicChoices, Input, NodeSpec
from latentloom.registry import Registry

ChoiceLister = Callable[[str], list[str]]


def input_to_json(spec_input: Input, list_choices: ChoiceLister) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": spec_input.name,
        "type": str(spec_input.type),
        "kind": "widget" if spec_input.is_widget else "socket",
        "required": spec_input.required,
    }
    if isinstance(spec_input.choices, DynamicChoices):
        entry["choices"] = list_choices(spec_input.choices.folder)
        entry["choices_from"] = spec_input.choices.folder
    elif spec_input.choices is not None:
        entry["choices"] = list(spec_input.choices)
    optional_fields = {
        "default": spec_input.default,
        "min": spec_input.min,
        "max": spec_input.max,
        "step": spec_input.step,
        "tooltip": spec_input.tooltip or None,
    }
    entry.update({key: value for key, value in optional_fields.items() if value is not None})
    if spec_input.multiline:
        entry["multiline"] = True
    if spec_input.accepts_list:
        entry["accepts_list"] = True
    if spec_input.optional:
        entry["optional"] = True
    return entry


def spec_to_json(spec: NodeSpec, list_choices: ChoiceLister) -> dict[str, Any]:
    return {
        "id": spec.id,
        "display_name": spec.display_name,
        "category": spec.category,
        "description": spec.description,
        "aliases": list(spec.aliases),
        "version": spec.version,
        "inputs": [input_to_json(spec_input, list_choices) for spec_input in spec.inputs],
        "outputs": [{"name": o.name, "type": str(o.type)} for o in spec.outputs],
        "output_node": spec.output_node,
        "nondeterministic": spec.nondeterministic,
    }


def catalog(registry: Registry, list_choices: ChoiceLister) -> list[dict[str, Any]]:
    return [spec_to_json(spec, list_choices) for spec in sorted(registry, key=lambda s: s.id)]
