"""The CLI progress bar's rate counts the first step: the bar is dated back to its node's start.

Progress arrives after each step, so a bar born at the first event used to start its clock
one step late. A fake clock for the printer (tqdm keeps its own real one) makes the elapsed
time exact to well under the tolerance."""

from __future__ import annotations

import io

import pytest

from latentloom.cli import _ProgressPrinter
from latentloom.engine.events import NodeFinished, NodeProgress, NodeStarted


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_step_counts_in_the_rate() -> None:
    clock, out = FakeClock(), io.StringIO()
    printer = _ProgressPrinter(clock=clock, file=out)
    printer(NodeStarted(node="sampler", type="sampling.ksampler"))
    clock.now += 4.0  # the first step (with its first kernels) takes 4 s
    printer(NodeProgress(node="sampler", step=1, total=4))
    bar = printer.bars["sampler"]
    assert bar.n == 1
    assert bar.format_dict["elapsed"] == pytest.approx(4.0, abs=0.25)
    assert "4.00s/step" in out.getvalue()  # 1 step in 4 s, not 1 step in ~0 s
    # No smoothing: the rate shown is steps / elapsed since the node began, not a recent EMA.
    assert bar.smoothing == 0 and bar.format_dict["rate"] is None
    printer(NodeFinished(node="sampler", type="sampling.ksampler", seconds=6.0, outputs={}))
    assert printer.bars == {} and printer.started == {}


def test_a_bar_without_a_started_node_starts_now() -> None:
    clock, out = FakeClock(), io.StringIO()
    printer = _ProgressPrinter(clock=clock, file=out)
    printer(NodeProgress(node="loose", step=1, total=2))
    assert printer.bars["loose"].format_dict["elapsed"] == pytest.approx(0.0, abs=0.25)
    printer.close()
    assert printer.bars == {}
