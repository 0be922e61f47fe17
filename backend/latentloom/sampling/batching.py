"""Which conditioning regions share one UNet call.

A UNet call takes a batch of equally sized inputs with equally long text embeddings. Regions
whose boxes have the same size share a call, in the order they come (the denoiser lists the
negative side first, so a plain guided step is the single call [uncond, cond] that diffusers'
pipelines make, and our results stay bit-identical to theirs). Prompts of different token
lengths share a call by repetition to their least common length (repeating a whole prompt
leaves its attention unchanged), but, as in ComfyUI, only while that is at most 4 times the
shortest: past that a separate call costs less than the padding. Regions with different
control sources or FLUX guidance never share a call (the network takes one value of each per
call); SDXL size conditioning does not split calls, since the UNet reads one row of time ids
per batch row (diffusers' refiner pipeline batches aesthetic scores 2.5 and 6.0 in one call,
and a second call would differ from it by ~1e-5 in the final latent). A call never holds more
latent pixels than a plain guided step over the whole latent, so a regional step needs no
more activation memory than the budget already assumes for the sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentloom.models.handles import SizeConditioning

MAX_TOKEN_REPEAT = 4


@dataclass(frozen=True)
class Job:
    """One region to evaluate: the size of its input and its prompt's token length."""

    height: int
    width: int
    tokens: int
    control: tuple[int, ...] = ()  # ids of its control sources: calls share only equal ones
    guidance: float | None = None  # FLUX's distilled guidance: calls share only equal ones
    size: SizeConditioning | None = None  # SDXL's size conditioning: per row, shares calls


def plan_calls(jobs: list[Job], pixel_budget: int) -> list[list[int]]:
    """Group job indices into UNet calls, each group in job order."""
    by_shape: dict[tuple[object, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        key = (job.height, job.width, job.control, job.guidance)
        by_shape.setdefault(key, []).append(index)
    calls: list[list[int]] = []
    for indices in by_shape.values():
        current: list[int] = []
        common = shortest = 0
        for index in indices:
            job = jobs[index]
            if current:
                new_common = math.lcm(common, job.tokens)
                new_shortest = min(shortest, job.tokens)
                pixels = (len(current) + 1) * job.height * job.width
                if new_common // new_shortest <= MAX_TOKEN_REPEAT and pixels <= pixel_budget:
                    current.append(index)
                    common, shortest = new_common, new_shortest
                    continue
                calls.append(current)
            current, common, shortest = [index], job.tokens, job.tokens
        calls.append(current)
    return calls
