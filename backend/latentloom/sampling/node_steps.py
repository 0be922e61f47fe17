"""What sampling nodes tell the user while and after they run: steps and sigma curves.

`step_callback` turns a node's context into the sampler's step callback: a cancellation check,
progress (step, total) and a live preview at every step. It takes any object with the
context's three methods, so this package never imports the engine. `sigmas_report` is the
contract the editor plots SIGMAS outputs from: `{"sigmas": [{"output", "values"}]}`.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

from latentloom.sampling.protocols import StepCallback


class StepSink(Protocol):
    """The parts of a node's context a sampler reports to (NodeContext has them)."""

    def check_cancelled(self) -> None: ...

    def progress(self, step: int, total: int) -> None: ...

    def preview(self, step: int, latent: Tensor, family: str | None) -> None: ...


def step_callback(ctx: StepSink, family: str | None) -> StepCallback:
    """Cancel, count and preview after every sampler step (steps are reported from 1)."""

    def on_step(step: int, total: int, x: Tensor, denoised: Tensor) -> None:
        ctx.check_cancelled()
        ctx.progress(step + 1, total)
        ctx.preview(step + 1, denoised, family)

    return on_step


def sigmas_report(**outputs: Tensor) -> dict[str, Any]:
    """The node report that lets the editor draw each SIGMAS output's curve."""
    return {
        "sigmas": [
            {"output": name, "values": [float(value) for value in sigmas.tolist()]}
            for name, sigmas in outputs.items()
        ]
    }
