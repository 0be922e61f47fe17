"""Routing by model affinity: the table of cases, without Ray."""

from __future__ import annotations

import pytest

from latentloom.jobs.affinity import (
    Route,
    Wait,
    WorkerView,
    choose_worker,
    models_named,
    resident_names,
)
from tests.support import load_example

A, B, L = "a.safetensors", "b.safetensors", "lora.safetensors"


def worker(name: str, idle: bool, *resident: str, last_used: float = 0.0) -> WorkerView:
    return WorkerView(name, idle, frozenset(resident), last_used)


CASES = [
    # (job's models, workers, seconds waited, expected)
    (
        {A},
        [worker("w1", True, B, last_used=1), worker("w2", True, A, last_used=2)],
        0,
        Route("w2", 1),
    ),
    # all resident beats most resident, even when less recently used
    ({A, L}, [worker("w1", True, A), worker("w2", True, A, L, last_used=9)], 0, Route("w2", 1)),
    # none holds all: the idle one holding most
    ({A, L}, [worker("w1", True, B), worker("w2", True, L, last_used=5)], 0, Route("w2", 2)),
    # a partial idle match goes before waiting for a busy full match
    ({A, L}, [worker("w1", False, A, L), worker("w2", True, A)], 0, Route("w2", 2)),
    # no idle match: wait for the busy worker that holds them all
    ({A}, [worker("w1", False, A), worker("w2", True, B)], 1.0, Wait("w1")),
    # ... but only for a short while, then the least recently used idle one
    ({A}, [worker("w1", False, A), worker("w2", True, B)], 3.0, Route("w2", 4)),
    # a busy worker holding only some of them is not worth waiting for
    ({A, L}, [worker("w1", False, A), worker("w2", True, B)], 0, Route("w2", 4)),
    # nothing resident anywhere: least recently used idle worker
    ({A}, [worker("w1", True, last_used=7), worker("w2", True, last_used=3)], 0, Route("w2", 4)),
    # a job naming no model file goes to the least recently used idle worker at once
    (
        set(),
        [worker("w1", True, A, last_used=2), worker("w2", True, last_used=1)],
        0,
        Route("w2", 4),
    ),
    # equal candidates: least recently used first, then by name
    ({A}, [worker("w2", True, A), worker("w1", True, A)], 0, Route("w1", 1)),
    # everyone busy and nobody holds the models: nothing to do yet
    ({A}, [worker("w1", False, B), worker("w2", False)], 0, None),
    ({A}, [], 0, None),
]


@pytest.mark.parametrize(("models", "workers", "waited", "expected"), CASES)
def test_choose_worker(
    models: set[str], workers: list[WorkerView], waited: float, expected: Route | Wait | None
) -> None:
    assert choose_worker(frozenset(models), workers, waited_s=waited, max_wait_s=3.0) == expected


def test_the_models_a_workflow_names_are_its_model_files_by_name() -> None:
    workflow = load_example("txt2img.json").to_json()
    assert models_named(workflow) == {"tiny-sd15.safetensors"}
    nested = {
        "nodes": {
            "ckpt": {"type": "x", "inputs": {"ckpt_name": "sdxl\\base.safetensors"}},
            "lora": {"type": "y", "inputs": {"lora_name": "style/ink.SAFETENSORS", "w": 0.5}},
            "text": {"type": "z", "inputs": {"text": "a cat", "model": {"node": "ckpt"}}},
        }
    }
    assert models_named(nested) == {"base.safetensors", "ink.SAFETENSORS"}
    assert models_named({"nodes": "broken"}) == frozenset()


def test_resident_sources_compare_by_file_name() -> None:
    sources = ["/models/checkpoints/tiny-sd15.safetensors", "", "C:\\m\\vae.safetensors"]
    assert resident_names(sources) == {"tiny-sd15.safetensors", "vae.safetensors"}
