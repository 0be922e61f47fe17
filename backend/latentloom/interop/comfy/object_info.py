"""`GET /object_info`: the ComfyUI classes we run, described in ComfyUI's input-spec shape.

Everything comes from the class table (`mapping.CLASSES`) and our node specs, so a class added
to the table appears here with no other change. Each input is `[type, options]`: a socket's
type name, or for widgets `INT`/`FLOAT`/`STRING`/`BOOLEAN` with default/min/max/step, or a
list of choices for an ENUM (model files listed from our folders). ComfyUI-only inputs that
the table marks `neutral` are offered with only their neutral values, so a client building a
prompt from this can only ask for what we do; likewise an input limited to `shared_values`
lists only those, and a `booleans` input is the COMBO of its two words (the default first).
Inputs the table fixes (ComfyUI has no widget for them) are left out. Output names are ComfyUI's convention: the type name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latentloom.interop.comfy.mapping import CLASSES, ClassMapping
from latentloom.node import DynamicChoices, Input, NodeSpec, WidgetType
from latentloom.registry import Registry

ChoiceLister = Callable[[str], list[str]]
UNKNOWN_OUTPUT = "*"  # an output of the ComfyUI class whose type the table does not give
WIDGET_TYPES = frozenset(str(widget) for widget in WidgetType)
PYTHON_MODULE = "latentloom"


def _widget_options(spec_input: Input) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in ("default", "min", "max", "step"):
        value = getattr(spec_input, key)
        if value is not None:
            # Our specs keep min/max/step as floats; an INT widget's bounds are whole numbers.
            integral = spec_input.type == WidgetType.INT and isinstance(value, float)
            options[key] = int(value) if integral else value
    if spec_input.multiline:
        options["multiline"] = True
    if spec_input.tooltip:
        options["tooltip"] = spec_input.tooltip
    return options


def input_spec(spec_input: Input, list_choices: ChoiceLister) -> list[Any]:
    """ComfyUI's `[type_or_choices, options]` for one of our inputs."""
    if not spec_input.is_widget:
        return [str(spec_input.type), {"tooltip": spec_input.tooltip} if spec_input.tooltip else {}]
    options = _widget_options(spec_input)
    if spec_input.type == WidgetType.ENUM:
        choices = spec_input.choices
        listed = (
            list_choices(choices.folder)
            if isinstance(choices, DynamicChoices)
            else list(choices or ())
        )
        return [listed, {k: v for k, v in options.items() if k in ("default", "tooltip")}]
    return [str(spec_input.type), options]


def _inputs(mapping: ClassMapping, spec: NodeSpec, list_choices: ChoiceLister) -> dict[str, Any]:
    sections: dict[str, dict[str, list[Any]]] = {"required": {}, "optional": {}}
    for spec_input in spec.inputs:
        if spec_input.name in mapping.fixed or spec_input.name in mapping.ours_only:
            continue
        entry = input_spec(spec_input, list_choices)
        name = mapping.theirs(spec_input.name)
        if name in mapping.seeds:
            entry[1]["control_after_generate"] = True
        if name in mapping.uploads:
            entry[1]["image_upload"] = True
        entry = _as_comfy_offers_it(mapping, name, spec_input, entry)
        sections["optional" if spec_input.optional else "required"][name] = entry
    for name, values in mapping.neutral.items():
        sections["required"][name] = [list(values), {"default": values[0]}]
    # ComfyUI's order: its sockets, then its widgets in the order editor files store them.
    required = sections["required"]
    order = [*(mapping.sockets or ()), *mapping.widget_order(spec)]
    ordered = {n: v for n, v in required.items() if n not in order and not _is_widget(v)}
    ordered.update({n: required[n] for n in order if n in required})
    ordered.update({n: v for n, v in required.items() if n not in ordered})
    sections["required"] = ordered
    return {key: value for key, value in sections.items() if value or key == "required"}


def _as_comfy_offers_it(
    mapping: ClassMapping, name: str, spec_input: Input, entry: list[Any]
) -> list[Any]:
    """A `booleans` input as its COMBO of words; a `shared_values` input with only those."""
    if name in mapping.booleans:
        default = mapping.to_comfy(name, spec_input.default)
        words = sorted(mapping.booleans[name], key=lambda word: word != default)
        return [words, {**entry[1], "default": default}]
    if name in mapping.shared_values:
        shared = mapping.shared_values[name]
        listed = [v for v in shared if not isinstance(entry[0], list) or v in entry[0]]
        return [listed, {**entry[1], "default": shared[0]}]
    return entry


def _is_widget(entry: list[Any]) -> bool:
    return isinstance(entry[0], list) or entry[0] in WIDGET_TYPES


def _output_types(mapping: ClassMapping, spec: NodeSpec) -> list[str]:
    if mapping.output_types is not None:
        return list(mapping.output_types)
    types = []
    for ours in mapping.output_names(spec):
        found = spec.output(ours) if ours is not None else None
        types.append(str(found.type) if found is not None else UNKNOWN_OUTPUT)
    return types


def class_info(mapping: ClassMapping, spec: NodeSpec, list_choices: ChoiceLister) -> dict[str, Any]:
    """`/object_info`'s entry for one ComfyUI class."""
    inputs = _inputs(mapping, spec, list_choices)
    output_types = _output_types(mapping, spec)
    return {
        "input": inputs,
        "input_order": {section: list(entries) for section, entries in inputs.items()},
        "output": output_types,
        "output_is_list": [False] * len(output_types),
        "output_name": list(output_types),
        "name": mapping.comfy_class,
        "display_name": spec.display_name,
        "description": spec.description,
        "category": spec.category,
        "output_node": spec.output_node,
        "python_module": PYTHON_MODULE,
        "deprecated": False,
        "experimental": False,
    }


def object_info(
    registry: Registry, list_choices: ChoiceLister, only: str | None = None
) -> dict[str, Any]:
    """Every supported class (or only `only`, {} when unknown), as ComfyUI describes classes."""
    answer: dict[str, Any] = {}
    for mapping in CLASSES:
        if only is not None and mapping.comfy_class != only:
            continue
        spec = registry.specs.get(mapping.node)
        if spec is not None:
            answer[mapping.comfy_class] = class_info(mapping, spec, list_choices)
    return answer
