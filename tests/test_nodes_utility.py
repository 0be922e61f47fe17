"""Utility nodes: the Seed node (a seed widget the editor controls like KSampler's) and the typed
switches (ComfyUI's Switch inputs; the chosen branch sizes what follows)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch

from latentloom.catalog import spec_to_json
from latentloom.engine.executor import Engine
from latentloom.graph.budget import estimate
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.node import SocketType, WidgetType
from tests.node_calls import bare_engine as make_bare_engine
from tests.node_calls import builtin_registry

# The editor's rule for which INT widgets get the fixed/increment/decrement/randomize control
# (frontend/src/canvas/widgets.ts, isSeed).
EDITOR_SEED_WIDGET = re.compile(r"(^|_)seed$")
MAX_SEED = 2**64 - 1


@pytest.fixture(scope="module")
def bare_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return make_bare_engine(tmp_path_factory.mktemp("bare"))


def graph(nodes: dict[str, Any]) -> Workflow:
    """The nodes, plus an output node of its own if they have none (validation wants one)."""
    if not any(node["type"] == "latent.save" for node in nodes.values()):
        nodes = {
            **nodes,
            "blank": {"type": "latent.empty", "inputs": {"width": 64, "height": 64, "batch": 1}},
            "save": {
                "type": "latent.save",
                "inputs": {"latent": {"node": "blank", "output": "latent"}},
            },
        }
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def seeded_noise_graph(seed: Any) -> Workflow:
    """Seed -> Add Noise's seed, beside Add Noise with a literal seed."""

    def noise(value: Any) -> dict[str, Any]:
        latent = {"node": "empty", "output": "latent"}
        return {
            "type": "latent.add_noise",
            "inputs": {"latent": latent, "seed": value, "mode": "strength", "amount": 1.0},
        }

    return graph(
        {
            "seed": {"type": "utility.seed", "inputs": {"seed": seed}},
            "empty": {"type": "latent.empty", "inputs": {"width": 64, "height": 64, "batch": 1}},
            "linked": noise({"node": "seed", "output": "seed"}),
            "literal": noise(seed),
            "save": {
                "type": "latent.save",
                "inputs": {"latent": {"node": "linked", "output": "latent"}},
            },
        }
    )


def test_the_seed_widget_is_one_the_editor_gives_a_seed_control() -> None:
    entry = spec_to_json(builtin_registry().specs["utility.seed"], lambda folder: [])
    [widget] = entry["inputs"]
    assert EDITOR_SEED_WIDGET.search(widget["name"])
    assert (widget["type"], widget["default"], widget["min"], widget["max"]) == (
        "INT",
        0,
        0,
        MAX_SEED,
    )
    assert entry["outputs"] == [{"name": "seed", "type": "INT"}]


@pytest.mark.parametrize("seed", [0, 12345, MAX_SEED])
def test_a_linked_seed_gives_what_the_same_literal_seed_gives(
    bare_engine: Engine, seed: int
) -> None:
    result = bare_engine.run(seeded_noise_graph(seed), targets=["seed", "linked", "literal"])
    assert result.outputs["seed"]["seed"] == seed
    linked, literal = result.outputs["linked"]["latent"], result.outputs["literal"]["latent"]
    assert torch.equal(linked.samples, literal.samples)
    # Known before the run, so a seed-dependent bound can be checked at validation.
    assert estimate(seeded_noise_graph(seed), builtin_registry()).resolved["linked"] == {
        "seed": seed
    }


def test_a_seed_past_64_bits_is_refused(bare_engine: Engine) -> None:
    problems = bare_engine.validate(seeded_noise_graph(2**64))
    # The Add Noise fed by the Seed node is held to the same bound as the one typed in.
    assert sorted((p.node, p.input, p.code) for p in problems) == [
        ("linked", "seed", "out_of_range"),
        ("literal", "seed", "out_of_range"),
        ("seed", "seed", "out_of_range"),
    ]


SWITCH_TYPES = [
    SocketType.MODEL,
    SocketType.CLIP,
    SocketType.VAE,
    SocketType.CONDITIONING,
    SocketType.LATENT,
    SocketType.IMAGE,
    SocketType.MASK,
    SocketType.SIGMAS,
    WidgetType.INT,
    WidgetType.FLOAT,
    WidgetType.STRING,
    WidgetType.BOOLEAN,
]


@pytest.mark.parametrize("kind", SWITCH_TYPES)
def test_every_switch_has_comfyuis_inputs_and_its_own_type(kind: SocketType | WidgetType) -> None:
    spec = builtin_registry().specs[f"utility.switch_{kind.value.lower()}"]
    assert [(i.name, i.type) for i in spec.inputs] == [
        ("switch", WidgetType.BOOLEAN),
        ("on_false", kind),
        ("on_true", kind),
    ]
    assert [(o.name, o.type) for o in spec.outputs] == [("output", kind)]
    assert "ComfySwitchNode" in spec.aliases


def latent_switch(choice: Any, amount: int = 2) -> Workflow:
    """Two Empty Latents (batch 1 and 40) into a latent switch, then Repeat Latent Batch."""

    def latent(batch: int) -> dict[str, Any]:
        return {"type": "latent.empty", "inputs": {"width": 64, "height": 64, "batch": batch}}

    return graph(
        {
            "one": latent(1),
            "forty": latent(40),
            "choice": {"type": "utility.boolean", "inputs": {"value": True}},
            "switch": {
                "type": "utility.switch_latent",
                "inputs": {
                    "switch": choice,
                    "on_false": {"node": "one", "output": "latent"},
                    "on_true": {"node": "forty", "output": "latent"},
                },
            },
            "more": {
                "type": "latent.repeat_batch",
                "inputs": {"samples": {"node": "switch", "output": "output"}, "amount": amount},
            },
            "save": {
                "type": "latent.save",
                "inputs": {"latent": {"node": "more", "output": "latent"}},
            },
        }
    )


@pytest.mark.parametrize(("choice", "batch"), [(False, 1), (True, 40)])
def test_the_switch_hands_on_the_chosen_input_after_running_both(
    bare_engine: Engine, choice: bool, batch: int
) -> None:
    result = bare_engine.run(latent_switch(choice, amount=1), targets=["switch"])
    assert result.outputs["switch"]["output"].samples.shape == (batch, 4, 8, 8)
    # No lazy inputs: both branches run (or come from the cache of an earlier run).
    assert {"one", "forty"} <= set(result.executed) | set(result.cached)


def test_the_chosen_branch_sizes_what_follows_at_validation(bare_engine: Engine) -> None:
    assert bare_engine.validate(latent_switch(False)) == []
    [problem] = bare_engine.validate(latent_switch(True))
    assert (problem.node, problem.input, problem.code) == ("more", "amount", "over_limit")
    # A choice from a value node is known before the run too.
    [problem] = bare_engine.validate(latent_switch({"node": "choice", "output": "value"}))
    assert (problem.node, problem.input) == ("more", "amount")


@pytest.mark.parametrize(
    ("node_type", "on_false", "on_true"),
    [
        ("utility.switch_int", -3, MAX_SEED),
        ("utility.switch_float", 0.5, -2.25),
        ("utility.switch_string", "a", "b"),
        ("utility.switch_boolean", True, False),
    ],
)
def test_value_switches_take_widgets_or_links(
    bare_engine: Engine, node_type: str, on_false: Any, on_true: Any
) -> None:
    for choice, expected in ((False, on_false), (True, on_true)):
        workflow = graph(
            {
                "switch": {
                    "type": node_type,
                    "inputs": {"switch": choice, "on_false": on_false, "on_true": on_true},
                }
            }
        )
        assert bare_engine.run(workflow, targets=["switch"]).outputs["switch"]["output"] == expected
