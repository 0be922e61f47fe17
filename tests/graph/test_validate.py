"""Validation against broken fixture files: every problem at once, with pinned messages.

Each `tests/fixtures/broken/NAME.json` is a workflow; `NAME.problems.json` beside it holds the
exact problems it must produce. The engine weighs them against a fixed budget, so messages
that name the budget do not depend on the machine running the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.budget import CostBudget
from latentloom.graph.workflow import load_workflow_file

BROKEN = Path(__file__).parents[1] / "fixtures" / "broken"
CASES = sorted(p.stem for p in BROKEN.glob("*.json") if not p.stem.endswith(".problems"))
# 12 GiB of RAM as the only pool, 100,000 megapixel-steps, fp32: a CPU machine.
PINNED_BUDGET = CostBudget(12 * 2**30, None, 100_000, compute_bytes=4)


@pytest.mark.parametrize("name", CASES)
def test_broken_fixture_reports_its_pinned_problems(name: str, engine: Engine) -> None:
    engine.budget = PINNED_BUDGET
    problems = engine.validate(load_workflow_file(BROKEN / f"{name}.json"))
    expected = json.loads((BROKEN / f"{name}.problems.json").read_text())
    assert [p.model_dump() for p in problems] == expected


def test_every_error_code_is_covered_by_a_fixture() -> None:
    codes = {
        p["code"]
        for name in CASES
        for p in json.loads((BROKEN / f"{name}.problems.json").read_text())
    }
    assert codes >= {
        "unknown_type",
        "missing_input",
        "missing_node",
        "missing_output",
        "type_mismatch",
        "out_of_range",
        "invalid_choice",
        "model_not_found",
        "cycle",
        "unknown_input",
        "wrong_type",
        "nothing_to_run",
        "unsupported_class",
        "over_budget",
        "over_limit",
        "off_step",
    }


def test_non_finite_numbers_are_out_of_range(engine: Engine) -> None:
    workflow = load_workflow_file(BROKEN.parents[1].parent / "workflows" / "txt2img.json")
    problems = engine.validate(workflow.with_input("sampler", "cfg", float("nan")))
    assert [(p.node, p.input, p.code) for p in problems] == [("sampler", "cfg", "out_of_range")]
