"""Latent nodes' bounds at validation: Add Noise's strength at most 1 (sigma goes higher), and
image sides on their step of 8, refused with the nearest allowed values, never floored."""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.validate import Problem
from latentloom.graph.workflow import Workflow, parse_workflow


def latent_graph(
    *, width: Any = 64, height: Any = 64, mode: str = "strength", amount: Any = 0.5
) -> Workflow:
    """Empty Latent -> Add Noise -> Save Latent; values may be links to value nodes."""
    return parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "empty": {
                    "type": "latent.empty",
                    "inputs": {"width": width, "height": height, "batch": 1},
                },
                "side": {"type": "utility.int", "inputs": {"value": 100}},
                "amount": {"type": "utility.float", "inputs": {"value": 2.5}},
                "noise": {
                    "type": "latent.add_noise",
                    "inputs": {
                        "latent": {"node": "empty", "output": "latent"},
                        "seed": 3,
                        "mode": mode,
                        "amount": amount,
                    },
                },
                "save": {
                    "type": "latent.save",
                    "inputs": {"latent": {"node": "noise", "output": "latent"}},
                },
            },
        }
    )


def problems(engine: Engine, workflow: Workflow) -> list[tuple[str | None, str | None, str]]:
    found: list[Problem] = engine.validate(workflow)
    return [(p.node, p.input, p.code) for p in found]


@pytest.mark.parametrize(
    ("mode", "amount"), [("strength", 1.0), ("strength", 0.0), ("sigma", 14.6)]
)
def test_strength_up_to_1_and_sigma_above_it_are_accepted(
    engine: Engine, mode: str, amount: float
) -> None:
    assert engine.validate(latent_graph(mode=mode, amount=amount)) == []


def test_strength_above_1_is_refused_at_validation_naming_node_and_input(engine: Engine) -> None:
    [problem] = engine.validate(latent_graph(amount=1.0001))
    assert (problem.node, problem.input, problem.code) == ("noise", "amount", "over_limit")
    assert problem.message == (
        "node \"noise\" (Add Noise) input 'amount': strength 1.0001 is above 1; mode 'strength' "
        "blends toward noise and takes 0 to 1 (1 is pure noise); for more noise than that use "
        "mode 'sigma'"
    )


def test_a_strength_from_a_value_node_is_held_to_the_same_bound(engine: Engine) -> None:
    linked = {"node": "amount", "output": "value"}  # 2.5
    assert problems(engine, latent_graph(amount=linked)) == [("noise", "amount", "over_limit")]
    assert engine.validate(latent_graph(mode="sigma", amount=linked)) == []


@pytest.mark.parametrize("width", range(65, 72))
def test_every_side_off_the_step_is_refused_with_the_nearest_allowed(
    engine: Engine, width: int
) -> None:
    [problem] = engine.validate(latent_graph(width=width))
    assert (problem.node, problem.input, problem.code) == ("empty", "width", "off_step")
    assert problem.message == (
        f"node \"empty\" (Empty Latent) input 'width': {width} is not a multiple of 8; use 64 or 72"
    )


def test_a_side_from_a_value_node_is_held_to_the_step(engine: Engine) -> None:
    [problem] = engine.validate(latent_graph(height={"node": "side", "output": "value"}))
    assert (problem.node, problem.input, problem.code) == ("empty", "height", "off_step")
    assert problem.message == (
        'node "empty" (Empty Latent) input \'height\' (from node "side"): 100 is not a '
        "multiple of 8; use 96 or 104"
    )


def test_sides_on_the_step_make_latents_of_exactly_that_size(engine: Engine) -> None:
    result = engine.run(latent_graph(width=72, height=136, amount=1.0), targets=["noise"])
    samples = result.outputs["noise"]["latent"].samples
    assert tuple(samples.shape) == (1, 4, 17, 9)
    # Strength 1 is pure noise: nothing of the zero latent is left, all of the noise is.
    assert 0.8 < float(samples.std()) < 1.2
