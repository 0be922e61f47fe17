"""Align Your Steps (Sabour et al. 2024): NVIDIA's published 10-step schedules, per model family.

The schedule is not a formula but a table optimised for each model, published for SD 1.5 and
SDXL (https://research.nvidia.com/labs/toronto-ai/AlignYourSteps/howto.html). Another step
count interpolates the table log-linearly: log-sigma is resampled at n + 1 evenly spaced
points over the table's positions, as NVIDIA's how-to and ComfyUI's AlignYourStepsScheduler
do. The last entry (the table's sigma_min) is then replaced by 0, so sampling ends clean.

Two things set it apart from the other schedules, both as in ComfyUI's node:

* it needs the model family (the SD 1 table serves SD 1.x and 2.x, the SDXL table SDXL), so
  `compute_sigmas` passes `family=` to it; without one it refuses rather than guess;
* denoise < 1 runs round(steps * denoise) steps: the tail of the steps-step schedule, where
  KSampler's rule runs `steps` steps of a longer one (see schedules.partial_sigmas).
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentloom.sampling.model_sampling import NoiseSchedule

# Sigmas from noisiest to cleanest, 10 steps; the last is the models' sigma_min.
# fmt: off
AYS_TABLES: dict[str, tuple[float, ...]] = {
    "SD1": (
        14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177,
        1.3943805092, 0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662,
        0.0291671582,
    ),
    "SDXL": (
        14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945,
        0.8620721141, 0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177,
        0.0291671582,
    ),
}
# fmt: on
# Which table each of our model families uses (ComfyUI's model_type choice).
AYS_TABLE_OF_FAMILY: dict[str, str] = {"sd15": "SD1", "sd2": "SD1", "sdxl": "SDXL"}


class ScheduleNeedsFamilyError(ValueError):
    """align_your_steps was asked for without a model family it has a table for."""

    def __init__(self, family: str | None) -> None:
        self.family = family
        known = ", ".join(AYS_TABLE_OF_FAMILY)
        got = "no model family was given" if family is None else f"got family {family!r}"
        super().__init__(
            f"scheduler 'align_your_steps' has tables for the model families {known}; {got}. "
            f"Use it with an SD 1.x, SD 2.x or SDXL model, or pick another scheduler."
        )


def loglinear_resample(table: tuple[float, ...], points: int) -> Tensor:
    """`points` sigmas, float64, interpolating log(table) linearly over evenly spaced positions."""
    if points == len(table):
        return torch.tensor(table, dtype=torch.float64)
    log_table = torch.tensor(table, dtype=torch.float64).log()
    positions = torch.linspace(0, len(table) - 1, points, dtype=torch.float64)
    # Each new point lies in the table interval [low, low + 1]; the last one sits on the end.
    low = positions.floor().long().clamp(max=len(table) - 2)
    weight = positions - low
    return (log_table[low] * (1 - weight) + log_table[low + 1] * weight).exp()


def sigmas_align_your_steps(
    schedule: NoiseSchedule, n: int, *, family: str | None = None
) -> Tensor:
    """Align Your Steps, Sabour et al. 2024: NVIDIA's table for the family, n steps, then 0."""
    if family not in AYS_TABLE_OF_FAMILY:
        raise ScheduleNeedsFamilyError(family)
    # The table is the model's own sigmas, not `schedule`'s: SD 1.x and SDXL share one training
    # schedule, and the tables already start at its sigma_max.
    return align_your_steps_sigmas(AYS_TABLE_OF_FAMILY[family], n)


def align_your_steps_sigmas(table: str, steps: int, denoise: float = 1.0) -> Tensor:
    """ComfyUI's AlignYourStepsScheduler node: `table` "SD1" or "SDXL" (its model_type).

    denoise < 1 keeps the last round(steps * denoise) steps of the steps-step schedule.
    As in ComfyUI, denoise <= 0 gives an empty schedule and a step count that rounds to 0 the
    schedule [0] (both sample nothing).
    """
    if table not in AYS_TABLES:
        raise ValueError(f"align_your_steps has the tables {', '.join(AYS_TABLES)}, not {table!r}")
    if steps < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {steps}")
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    kept = steps if denoise >= 1.0 else round(steps * denoise)
    sigmas = loglinear_resample(AYS_TABLES[table], steps + 1)[-(kept + 1) :].clone()
    sigmas[-1] = 0.0
    return sigmas.to(torch.float32)
