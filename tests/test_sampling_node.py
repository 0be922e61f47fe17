"""The KSampler node in a real graph: progress, previews and cancellation at every step."""

from __future__ import annotations

import pytest

from latentloom.engine.context import Cancelled, CancelToken
from latentloom.engine.events import NodeProgress, Preview
from latentloom.engine.executor import Engine
from latentloom.preview import latent_to_preview
from tests.support import load_example

STEPS = 6


def test_progress_and_a_preview_for_every_step(engine: Engine) -> None:
    progress: list[tuple[int, int]] = []
    previews: list[Preview] = []
    workflow = load_example("txt2img.json").with_input("sampler", "steps", STEPS)
    engine.run(
        workflow,
        on_event=lambda e: isinstance(e, NodeProgress) and progress.append((e.step, e.total)),
        on_preview=previews.append,
    )
    assert progress == [(step, STEPS) for step in range(1, STEPS + 1)]
    assert [p.step for p in previews] == list(range(1, STEPS + 1))
    assert all(p.node == "sampler" and p.family == "sd15" for p in previews)
    image = latent_to_preview(previews[-1].latent, previews[-1].family)
    assert image.size == (32, 32) and image.mode == "RGB"


def test_cancel_stops_the_sampler_within_one_step(engine: Engine) -> None:
    cancel = CancelToken()
    seen: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, NodeProgress):
            seen.append(event.step)
            if event.step == 2:
                cancel.cancel()

    workflow = load_example("txt2img.json").with_input("sampler", "steps", 50)
    with pytest.raises(Cancelled):
        engine.run(workflow, on_event=on_event, cancel=cancel)
    assert seen == [1, 2]
    # Cancelled work is not cached: the next run samples again, completely.
    assert "sampler" in engine.run(workflow.with_input("sampler", "steps", 3)).executed
