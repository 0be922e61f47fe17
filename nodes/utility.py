"""Utility nodes: notes on the canvas, plain values other nodes' widgets can share, switches.

A note has no outputs and is not an output node, so the planner never runs it; it is a text
box that travels with the workflow. A value node (int, float, string, boolean) holds one
widget and hands it on; wiring it into several nodes' widgets keeps them in step (ComfyUI's
Primitive nodes import as these). The Seed node is a value node whose widget is named `seed`,
so the editor gives it the same after-run control (fixed, increment, decrement, randomize)
as KSampler's seed.

A switch hands on `on_true` or `on_false` as its BOOLEAN `switch` says, with ComfyUI's input
names (its Switch node). There is one per value type, so links stay typed. Both inputs are
computed: the planner runs every linked input. Lazy inputs would need the executor to plan
around a value known only at run time; muting the unused branch skips it meanwhile.
"""

from __future__ import annotations

import sys

from latentloom.api import (
    MAX_SEED,
    Cost,
    CostQuery,
    Input,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    Value,
    WidgetType,
    boolean_input,
    float_input,
    int_input,
    socket,
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


def seed(ctx: NodeContext, seed: int) -> dict[str, object]:
    return {"seed": seed}


def seed_cost(query: CostQuery) -> Cost:
    """Like a value node's: the nodes it feeds are estimated with the real seed."""
    if "seed" not in query.literals:
        return Cost()
    return Cost(outputs={"seed": Value(query.literals["seed"])})


def switch(ctx: NodeContext, switch: bool, on_false: object, on_true: object) -> dict[str, object]:
    return {"output": on_true if switch else on_false}


def switch_cost(query: CostQuery) -> Cost:
    """The chosen input's estimate; with the choice unknown, the larger batch (or none)."""
    chosen = query.literals.get("switch")
    if isinstance(chosen, bool):
        name = "on_true" if chosen else "on_false"
        if name in query.upstream:
            return Cost(outputs={"output": query.upstream[name]})
        if name in query.literals:
            return Cost(outputs={"output": Value(query.literals[name])})
        return Cost()
    batches = [query.batch(name) for name in ("on_false", "on_true")]
    known = [batch for batch in batches if batch is not None]
    if not known:
        return Cost()
    return Cost(outputs={"output": max(known, key=lambda batch: batch.latent_bytes)})


def _switch_input(name: str, kind: SocketType | WidgetType) -> Input:
    """A socket for values that only travel along links, else a widget of that type."""
    if isinstance(kind, SocketType):
        return socket(name, kind)
    makers = {
        WidgetType.INT: lambda: int_input(name, 0, min=INT_MIN, max=INT_MAX),
        WidgetType.FLOAT: lambda: float_input(
            name, 0.0, min=-sys.float_info.max, max=sys.float_info.max
        ),
        WidgetType.STRING: lambda: string_input(name, ""),
        WidgetType.BOOLEAN: lambda: boolean_input(name, False),
    }
    return makers[kind]()


def _switch_node(kind: SocketType | WidgetType, label: str) -> NodeSpec:
    return NodeSpec(
        id=f"utility.switch_{kind.value.lower()}",
        display_name=f"Switch ({label})",
        aliases=("ComfySwitchNode", "Switch"),
        category="utility/switch",
        description=f"Hands on one of two {kind.value} values: on_true when switch is on, else "
        "on_false. Both inputs are computed; mute the unused branch to skip it.",
        inputs=(
            boolean_input("switch", False),
            _switch_input("on_false", kind),
            _switch_input("on_true", kind),
        ),
        outputs=(Output("output", kind),),
        function=switch,
        cost=switch_cost,
    )


SWITCH_TYPES: tuple[tuple[SocketType | WidgetType, str], ...] = (
    (SocketType.MODEL, "Model"),
    (SocketType.CLIP, "CLIP"),
    (SocketType.VAE, "VAE"),
    (SocketType.CONDITIONING, "Conditioning"),
    (SocketType.LATENT, "Latent"),
    (SocketType.IMAGE, "Image"),
    (SocketType.MASK, "Mask"),
    (SocketType.SIGMAS, "Sigmas"),
    (WidgetType.INT, "Int"),
    (WidgetType.FLOAT, "Float"),
    (WidgetType.STRING, "String"),
    (WidgetType.BOOLEAN, "Boolean"),
)


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
        "string",
        "String",
        WidgetType.STRING,
        "PrimitiveString",
        "PrimitiveStringMultiline",
        "String (Multiline)",
    ),
    _value_node("boolean", "Boolean", WidgetType.BOOLEAN, "PrimitiveBoolean", "Boolean"),
    NodeSpec(
        id="utility.seed",
        display_name="Seed",
        aliases=("Seed (rgthree)", "CR Seed"),
        category="utility",
        description="One seed (0 to 2^64 - 1) for several samplers. Like KSampler's seed, it "
        "can stay fixed or increment, decrement or randomize after each run.",
        inputs=(int_input("seed", 0, min=0, max=MAX_SEED),),
        outputs=(Output("seed", WidgetType.INT),),
        function=seed,
        cost=seed_cost,
    ),
    *(_switch_node(kind, label) for kind, label in SWITCH_TYPES),
]
