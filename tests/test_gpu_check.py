"""`make gpu-check` without a GPU: the dry run of its plumbing at tiny sizes on the CPU.

Tiny SD 1.5 and SDXL checkpoints through our engine and through diffusers' pipelines, then
tiny SD 3.5 and FLUX.1-dev files (FLUX also stored in fp8) through our sampler and
StableDiffusion3Pipeline / FluxPipeline: the oracle comparison, the finite-pixel check and the
report; it must say there is no CUDA device and pass (exit 0), with every fp32 latent agreeing
within the oracle's tolerance."""

from __future__ import annotations

import re

import pytest

from bench import gpu_check

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_dry_run_reports_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "no CUDA device here; a dry run" in out
    assert "CPU, float32, euler karras, cfg 7.0, 2 steps" in out
    rows = re.findall(
        r"(sd15|sdxl|sd35m|flux|flux fp8) +64²  ours +([\d.]+) it/s +diffusers +([\d.]+) it/s", out
    )
    assert [row[0] for row in rows] == ["sd15", "sdxl", "sd35m", "flux", "flux fp8"]
    assert all(float(ours) > 0 and float(theirs) > 0 for _, ours, theirs in rows)
    differences = [float(value) for value in re.findall(r"latent max\|Δ\|/range ([\d.e+-]+)", out)]
    tolerance = gpu_check.TOLERANCE[gpu_check.torch.float32]
    assert len(differences) == 5 and all(value <= tolerance for value in differences)
    assert out.count("pixels finite") == 5
    assert out.count("attention AttnProcessor2_0") == 2  # SDPA, diffusers' default
    assert "attention JointAttnProcessor2_0" in out and "attention FluxAttnProcessor" in out
    assert out.rstrip().endswith("gpu-check: passed")


def test_an_unknown_family_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--families", "sd15,sd4"])
    assert "--families: unknown sd4; choose from sd15, sdxl, sd35, flux, flux-fp8" in (
        capsys.readouterr().err
    )
