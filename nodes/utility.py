"""Utility nodes: notes on the canvas and plain values other nodes' widgets can share.

A note has no outputs and is not an output node, so the planner never runs it; it is a text
box that travels with the workflow. A value node (int, float, string, boolean) holds one
widget and hands it on; wiring it into several nodes' widgets keeps them in step (ComfyUI's
Primitive nodes import as these).
"""

from __future__ import annotations

import sys

from latentloom.api import (
    NodeContext,
    NodeSpec,
    Output,
    WidgetType,
    boolean_input,
    float_input,
    int_input,
    string_input,
    value_cost,
)

# Wide enough for any ComfyUI INT widget: negative clip layers up to 64-bit seeds.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


def note(ctx: NodeContext, text: str) -> dict[str, object]:
    return {}


def pass_value(ctx: NodeContext, value: object) -> dict[str, object]:
    return {"value": value}


def _value_node(kind: str, display_name: str, widget_type: WidgetType, *aliases: str) -> NodeSpec:
    makers = {
        WidgetType.INT: lambda: int_input("value", 0, min=INT_MIN, max=INT_MAX),
        WidgetType.FLOAT: lambda: float_input(
            "value", 0.0, min=-sys.float_info.max, max=sys.float_info.max
        ),
        WidgetType.STRING: lambda: string_input("value", "", multiline=True),
        WidgetType.BOOLEAN: lambda: boolean_input("value", False),
    }
    return NodeSpec(
        id=f"utility.{kind}",
        display_name=display_name,
        aliases=(*aliases, "PrimitiveNode", "Primitive"),
        category="utility",
        description=f"One {widget_type} value; link it into any {widget_type} widget to share it.",
        inputs=(makers[widget_type](),),
        outputs=(Output("value", widget_type),),
        function=pass_value,
        cost=value_cost,
    )


NODES = [
    NodeSpec(
        id="utility.note",
        display_name="Note",
        aliases=("Note", "MarkdownNote"),
        category="utility",
        description="A text note on the canvas. It never runs and changes no result.",
        inputs=(string_input("text", "", multiline=True),),
        outputs=(),
        function=note,
    ),
    _value_node("int", "Integer", WidgetType.INT, "PrimitiveInt", "Int"),
    _value_node("float", "Float", WidgetType.FLOAT, "PrimitiveFloat", "Float"),
    _value_node(
        "string", "String", WidgetType.STRING, "PrimitiveString", "PrimitiveStringMultiline"
    ),
    _value_node("boolean", "Boolean", WidgetType.BOOLEAN, "PrimitiveBoolean", "Boolean"),
]
