"""KSampler on the real tiny SD 3 and FLUX.1 dev models: every scheduler, the flow samplers.

The models are loaded from tiny single files in the real layouts (the session's tiny-sd3
checkpoint; a tiny FLUX dev transformer written here), so the network calls are the real
ones (`models/sd3_call.py`, `models/flux_call.py`). Prompts are random embeddings of the
transformers' widths: what is tested is sampling, not text encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch import Tensor

from latentloom.models.flux_model import load_flux_unet
from latentloom.models.handles import Conditioning, ConditioningEntry, DiffusionModel
from latentloom.models.sd3_load import load_sd3_file
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.sampling.align_your_steps import ScheduleNeedsFamilyError
from latentloom.sampling.run import sample
from latentloom.sampling.samplers import FLOW_SAMPLERS
from latentloom.sampling.schedules import SCHEDULES

CPU = torch.device("cpu")
LATENT_SHAPE = (1, 16, 8, 8)


@pytest.fixture(scope="module")
def sd3(models_dir: Path) -> DiffusionModel:
    path = models_dir / "checkpoints" / "tiny-sd3.safetensors"
    return load_sd3_file(path, device=CPU, dtype=torch.float32, vae_dtype=torch.float32).model


@pytest.fixture(scope="module")
def flux(tmp_path_factory: pytest.TempPathFactory) -> DiffusionModel:
    path = make_tiny_checkpoint(
        "flux-dev", tmp_path_factory.mktemp("flux") / "tiny-flux.safetensors"
    )
    return load_flux_unet(path, device=CPU, dtype=torch.float32)


def prompt(model: DiffusionModel, seed: int, guidance: float | None = None) -> Conditioning:
    config: Any = cast(Any, model.unet).config
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, 6, int(config.joint_attention_dim), generator=generator)
    pooled = torch.randn(1, int(config.pooled_projection_dim), generator=generator)
    return Conditioning((ConditioningEntry(embeds, pooled, guidance=guidance),))


def run(model: DiffusionModel, sampler: str, scheduler: str, steps: int, **kw: Any) -> Tensor:
    return sample(
        model,
        prompt(model, 1, kw.pop("guidance", None)),
        prompt(model, 2),
        torch.zeros(LATENT_SHAPE),
        seed=5,
        steps=steps,
        cfg=kw.pop("cfg", 3.0),
        sampler=sampler,
        scheduler=scheduler,
        **kw,
    )


@pytest.mark.parametrize("family", ["sd3", "flux"])
@pytest.mark.parametrize("scheduler", sorted(set(SCHEDULES) - {"align_your_steps"}))
def test_every_scheduler_runs_on_tiny_flow_models(
    family: str, scheduler: str, request: pytest.FixtureRequest
) -> None:
    model: DiffusionModel = request.getfixturevalue(family)
    result = run(model, "euler", scheduler, 3)
    assert result.shape == LATENT_SHAPE
    assert torch.isfinite(result).all()


# The samplers with flow forms of their own (the rest run unchanged and are checked on exact
# toys in test_flow_samplers.py and test_flow_model.py), on the real FLUX network.
@pytest.mark.parametrize("sampler", sorted(FLOW_SAMPLERS))
def test_flow_form_samplers_run_on_tiny_flux(sampler: str, flux: DiffusionModel) -> None:
    result = run(flux, sampler, "simple", 2)
    assert torch.isfinite(result).all()


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_align_your_steps_is_refused_on_flow_models(
    family: str, request: pytest.FixtureRequest
) -> None:
    model: DiffusionModel = request.getfixturevalue(family)
    with pytest.raises(ScheduleNeedsFamilyError, match=f"got family '{family}'"):
        run(model, "euler", "align_your_steps", 2)


def test_flux_dev_guidance_reaches_the_transformer(flux: DiffusionModel) -> None:
    low = run(flux, "euler", "simple", 2, guidance=1.0, cfg=1.0)
    high = run(flux, "euler", "simple", 2, guidance=5.0, cfg=1.0)
    assert not torch.equal(low, high)
    again = run(flux, "euler", "simple", 2, guidance=5.0, cfg=1.0)
    assert torch.equal(high, again)
