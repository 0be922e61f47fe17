"""align_your_steps: NVIDIA's published tables, interpolated as NVIDIA's how-to does.

The oracle for other step counts is NVIDIA's recipe written with numpy (np.interp of the
reversed log-sigmas over evenly spaced positions, as on the AYS how-to page and in ComfyUI's
node); the tables are checked against the SD training schedule they were solved on. The
family decides the table, and a missing or unknown family is refused with a message naming
the scheduler.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.align_your_steps import (
    AYS_TABLES,
    ScheduleNeedsFamilyError,
    align_your_steps_sigmas,
)
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.schedules import compute_sigmas, schedule_function
from latentloom.sampling.sigma_ops import basic_scheduler_sigmas, ksampler_sigmas
from tests.sampling.tiny_models import tiny_model


def nvidia_loglinear(table: list[float], points: int) -> np.ndarray:
    """NVIDIA's loglinear_interp: interpolate log-sigma over [0, 1], ascending, then flip."""
    xs = np.linspace(0, 1, len(table))
    ys = np.log(table[::-1])
    return np.exp(np.interp(np.linspace(0, 1, points), xs, ys))[::-1].copy()


@pytest.fixture(scope="module")
def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


@pytest.mark.parametrize(("table", "second"), [("SD1", 6.4745760956), ("SDXL", 6.3184485287)])
def test_tables_span_the_models_sigmas(
    schedule: DiscreteSchedule, table: str, second: float
) -> None:
    # NVIDIA optimised them on SD's training schedule: they start at its sigma_max and end at
    # its sigma_min (to the 10 digits published), strictly decreasing in between.
    values = AYS_TABLES[table]
    assert len(values) == 11 and values[1] == second
    assert values[0] == pytest.approx(schedule.sigma_max, abs=1e-9)
    assert values[-1] == pytest.approx(schedule.sigma_min, abs=1e-9)
    assert all(a > b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(("family", "table"), [("sd15", "SD1"), ("sd2", "SD1"), ("sdxl", "SDXL")])
@pytest.mark.parametrize("steps", [1, 4, 10, 17, 50])
def test_the_familys_table_interpolated_log_linearly(
    schedule: DiscreteSchedule, family: str, table: str, steps: int
) -> None:
    ours = schedule_function("align_your_steps", family)(schedule, steps)
    expected = nvidia_loglinear(list(AYS_TABLES[table]), steps + 1)
    expected[-1] = 0  # the table's sigma_min becomes the final 0
    # float64 interpolation both ways, cast to float32: at most one float32 ulp apart.
    torch.testing.assert_close(
        ours, torch.tensor(expected, dtype=torch.float32), rtol=1.2e-7, atol=0
    )
    if steps == 10:
        assert ours[:-1].tolist() == torch.tensor(AYS_TABLES[table][:-1]).float().tolist()


def test_sd1_and_sdxl_tables_differ(schedule: DiscreteSchedule) -> None:
    sd1 = compute_sigmas("align_your_steps", schedule, 10, family="sd15")
    sdxl = compute_sigmas("align_your_steps", schedule, 10, family="sdxl")
    assert sd1[0] == sdxl[0] and not torch.equal(sd1, sdxl)


@pytest.mark.parametrize("family", [None, "flux"])
def test_refuses_without_a_family_it_has_a_table_for(
    schedule: DiscreteSchedule, family: str | None
) -> None:
    got = "no model family was given" if family is None else "got family 'flux'"
    with pytest.raises(ScheduleNeedsFamilyError) as caught:
        compute_sigmas("align_your_steps", schedule, 10, family=family)
    assert str(caught.value) == (
        f"scheduler 'align_your_steps' has tables for the model families sd15, sd2, sdxl; "
        f"{got}. Use it with an SD 1.x, SD 2.x or SDXL model, or pick another scheduler."
    )
    assert isinstance(caught.value, ValueError)


def test_denoise_runs_the_tail_of_the_steps_step_schedule(schedule: DiscreteSchedule) -> None:
    # As ComfyUI's AlignYourStepsScheduler: round(steps * denoise) steps of the 10-step table.
    full = compute_sigmas("align_your_steps", schedule, 10, family="sdxl")
    half = compute_sigmas("align_your_steps", schedule, 10, 0.5, family="sdxl")
    assert torch.equal(half, full[-6:])
    # round() is Python's: 10 * 0.25 = 2.5 rounds to 2 steps; 10 * 0.35 = 3.5 to 4.
    assert len(compute_sigmas("align_your_steps", schedule, 10, 0.25, family="sd15")) == 3
    assert len(compute_sigmas("align_your_steps", schedule, 10, 0.35, family="sd15")) == 5
    # KSampler's rule for the others: 10 steps, the tail of a 20-step schedule.
    assert len(compute_sigmas("karras", schedule, 10, 0.5)) == 11
    assert compute_sigmas("align_your_steps", schedule, 10, 0.0, family="sd15").numel() == 0
    assert compute_sigmas("align_your_steps", schedule, 10, 0.04, family="sd15").numel() == 0


def test_discarding_the_penultimate_sigma_applies_too(schedule: DiscreteSchedule) -> None:
    # dpm_2 and uni_pc in KSampler: an 11-step schedule with its second-to-last sigma dropped.
    longer = compute_sigmas("align_your_steps", schedule, 11, family="sd15")
    dropped = compute_sigmas(
        "align_your_steps", schedule, 10, family="sd15", discard_penultimate=True
    )
    assert torch.equal(dropped, torch.cat([longer[:-2], longer[-1:]]))


def test_node_rule_matches_comfyuis_node() -> None:
    # AlignYourStepsScheduler(model_type, steps, denoise) as ComfyUI returns it.
    assert torch.equal(
        align_your_steps_sigmas("SD1", 10, 0.3),
        torch.tensor([*AYS_TABLES["SD1"][-4:-1], 0.0], dtype=torch.float32),
    )
    assert align_your_steps_sigmas("SDXL", 10, 0.0).numel() == 0
    assert align_your_steps_sigmas("SDXL", 10, 0.04).tolist() == [0.0]  # rounds to 0 steps
    with pytest.raises(ValueError, match="align_your_steps has the tables SD1, SDXL, not 'SVD'"):
        align_your_steps_sigmas("SVD", 10)


@pytest.mark.parametrize("sdxl, table", [(False, "SD1"), (True, "SDXL")])
def test_ksampler_and_basic_scheduler_use_the_models_table(sdxl: bool, table: str) -> None:
    model = tiny_model(sdxl=sdxl)
    expected = align_your_steps_sigmas(table, 10)
    torch.testing.assert_close(ksampler_sigmas(model, "euler", "align_your_steps", 10), expected)
    torch.testing.assert_close(basic_scheduler_sigmas(model, "align_your_steps", 10, 1.0), expected)
