"""Editor files' `widgets_values` → named ComfyUI inputs, plus the seed controls between them.

ComfyUI stores widget values by position: one per widget input in the class's widget order
(`ClassMapping.widget_order`), sockets skipped. Two kinds of widget bring an extra value that
is not an input: a seed's `control_after_generate` ("fixed", "increment", "decrement",
"randomize", or `true`/`false` in old files) and an upload button's value after Load Image's
file name. Files written before seeds had a control carry none, so the count decides: the
full count reads the extras, the count without them reads none, any other count is an error
naming what was expected. Widgets a class gained or lost at its end over ComfyUI's versions
(`ClassMapping.trailing`) may be missing too: a shorter count reads the widgets before them,
and ours take their defaults. Newer nodes may store a dict by name instead; we read that by
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latentloom.graph.workflow import LiteralValue
from latentloom.interop.comfy.convert import check_literal, describe
from latentloom.interop.comfy.mapping import SEED_CONTROLS, ClassMapping
from latentloom.interop.comfy.report import ComfyFormatError
from latentloom.node import NodeSpec

CONTROL = "control_after_generate"
UPLOAD = "upload"


class WidgetCountError(ComfyFormatError):
    """widgets_values has a count this class never stores: another version of the class."""

    def __init__(self, where: str, detail: str) -> None:
        self.detail = detail
        super().__init__(where, detail)


@dataclass
class Widgets:
    values: dict[str, LiteralValue] = field(default_factory=dict)  # by ComfyUI input name
    seed_control: dict[str, str] = field(default_factory=dict)  # by OUR input name


def control_mode(value: Any, where: str) -> str:
    """A control_after_generate value as one of SEED_CONTROLS (old files: true/false)."""
    if value is True:
        return "randomize"
    if value is False:
        return "fixed"
    if isinstance(value, str) and value in SEED_CONTROLS:
        return value
    allowed = ", ".join(SEED_CONTROLS)
    raise ComfyFormatError(
        where,
        f"expected a control_after_generate value ({allowed}, true or false), got "
        f"{describe(value)}",
    )


def _slots(entry: ClassMapping, spec: NodeSpec, with_extras: bool, dropped: int = 0) -> list[str]:
    """What each position of widgets_values holds: input names, CONTROL or UPLOAD, for a
    file without the last `dropped` of the class's trailing widgets."""
    order = entry.widget_order(spec)
    slots: list[str] = []
    for name in order[: len(order) - dropped]:
        slots.append(name)
        if with_extras and name in entry.seeds:
            slots.append(CONTROL)
        if with_extras and name in entry.uploads:
            slots.append(UPLOAD)
    return slots


def read_widgets(entry: ClassMapping, spec: NodeSpec, values: Any, where: str) -> Widgets:
    """The named widget values a node stored, for a class the table maps."""
    if values is None:
        return Widgets()
    if isinstance(values, dict):
        return _read_by_name(entry, values, where)
    if not isinstance(values, list):
        raise ComfyFormatError(where, f"expected a list or an object, got {describe(values)}")
    full = _slots(entry, spec, True)
    layouts = [
        _slots(entry, spec, extras, dropped)
        for dropped in range(len(entry.trailing) + 1)
        for extras in (True, False)
    ]
    slots = next((layout for layout in layouts if len(layout) == len(values)), None)
    if slots is None:
        listed = ", ".join(full) or "nothing"
        raise WidgetCountError(
            where, f"has {len(values)} value(s); {entry.comfy_class} stores {len(full)}: {listed}"
        )
    widgets = Widgets()
    previous = ""
    for index, (slot, value) in enumerate(zip(slots, values, strict=True)):
        at = f"{where}[{index}]"
        if slot == CONTROL:
            widgets.seed_control[entry.ours(previous)] = control_mode(value, at)
        elif slot != UPLOAD:
            widgets.values[slot] = check_literal(value, at)
            previous = slot
    return widgets


def _read_by_name(entry: ClassMapping, values: dict[str, Any], where: str) -> Widgets:
    widgets = Widgets()
    for name, value in values.items():
        at = f"{where}.{name}"
        if name == CONTROL or name.endswith(f".{CONTROL}"):
            seed = (
                name.removesuffix(f".{CONTROL}") if name != CONTROL else next(iter(entry.seeds), "")
            )
            if seed:
                widgets.seed_control[entry.ours(seed)] = control_mode(value, at)
        elif name != UPLOAD:
            widgets.values[name] = check_literal(value, at)
    return widgets
