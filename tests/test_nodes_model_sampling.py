"""Model sampling nodes and FluxGuidance: copies with a new ModelSampling, clear refusals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import pytest
import torch

from latentloom.models.family import SD3, SD15
from latentloom.models.handles import Conditioning, ConditioningEntry, DiffusionModel
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.model_sampling import (
    ZSNR_TERMINAL_ALPHA_BAR,
    DiscreteSampling,
    FlowSampling,
    flux_sampling,
    sd3_sampling,
)
from tests.node_calls import node_runner


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return node_runner(Path(tmp_path_factory.mktemp("model_sampling")))


def sd_model() -> DiffusionModel:
    return DiffusionModel(
        cast(Any, torch.nn.Linear(1, 1)), SD15, "epsilon", alphas_cumprod(), "tiny-sd15"
    )


def flow_model(sampling: FlowSampling) -> DiffusionModel:
    return DiffusionModel(
        cast(Any, torch.nn.Linear(1, 1)),
        SD3,
        "epsilon",
        alphas_cumprod(),
        "tiny-sd3",
        sampling=sampling,
    )


def test_discrete_v_prediction_is_a_copy(call: Any) -> None:
    model = sd_model()
    out = call("model.model_sampling_discrete", model=model, sampling="v_prediction", zsnr=False)
    patched = out["model"]
    assert patched.prediction_type == "v_prediction"
    assert patched.model_sampling.kind == "v_prediction"
    assert patched.unet is model.unet
    assert model.prediction_type == "epsilon" and model.model_sampling.kind == "epsilon"


def test_discrete_zsnr_rescales_to_zero_terminal_snr(call: Any) -> None:
    model = sd_model()
    patched = call("model.model_sampling_discrete", model=model, sampling="eps", zsnr=True)["model"]
    cumprod = patched.alphas_cumprod
    assert float(cumprod[0]) == pytest.approx(float(model.alphas_cumprod[0]), rel=1e-12)
    assert float(cumprod[-1]) == ZSNR_TERMINAL_ALPHA_BAR
    # sigma_max = sqrt((1 - a) / a) at the terminal alpha_bar: ~4518.
    expected = math.sqrt((1 - ZSNR_TERMINAL_ALPHA_BAR) / ZSNR_TERMINAL_ALPHA_BAR)
    assert patched.model_sampling.sigma_max == pytest.approx(expected)
    # sqrt(alpha_bar) is an affine map of the original's: the middle moves as the line says.
    root, old = cumprod.sqrt(), model.alphas_cumprod.double().sqrt()
    scale = old[0] / (old[0] - old[-1])
    assert float(root[500]) == pytest.approx(float((old[500] - old[-1]) * scale), rel=1e-12)


def test_sd3_shift_sets_only_the_shift(call: Any) -> None:
    original = sd3_sampling()
    model = flow_model(original)
    patched = call("model.model_sampling_sd3", model=model, shift=6.0)["model"]
    sampling = patched.model_sampling
    assert isinstance(sampling, FlowSampling)
    assert (sampling.shift, sampling.multiplier, sampling.timesteps) == (6.0, 1000.0, 1000)
    assert model.sampling is original and original.shift == 3.0  # the input is untouched


def test_flux_shift_from_size_keeps_fluxs_timestep(call: Any) -> None:
    model = flow_model(flux_sampling(0.5))
    patched = call(
        "model.model_sampling_flux",
        model=model,
        max_shift=1.15,
        base_shift=0.5,
        width=1024,
        height=1024,
    )["model"]
    sampling = patched.model_sampling
    assert sampling.shift == pytest.approx(math.exp(1.15))
    assert (sampling.multiplier, sampling.timesteps) == (1.0, 10000)


def test_flow_nodes_refuse_an_sd_model(call: Any) -> None:
    with pytest.raises(ValueError) as caught:
        call("model.model_sampling_sd3", model=sd_model(), shift=3.0)
    assert str(caught.value) == (
        "Model Sampling SD3 applies to rectified-flow (SD 3.x / FLUX) models, but tiny-sd15 "
        "(SD 1.x) samples as 'epsilon'; use Model Sampling Discrete instead"
    )


def test_discrete_node_refuses_a_flow_model(call: Any) -> None:
    with pytest.raises(ValueError) as caught:
        call(
            "model.model_sampling_discrete",
            model=flow_model(sd3_sampling()),
            sampling="eps",
            zsnr=False,
        )
    assert str(caught.value) == (
        "Model Sampling Discrete applies to SD 1.x / 2.x / SDXL models, but tiny-sd3 "
        f"({SD3.display_name}) samples as 'flow'; use Model Sampling SD3 or Model Sampling "
        "Flux instead"
    )


def test_flux_guidance_sets_every_entry(call: Any) -> None:
    entries = (ConditioningEntry(torch.zeros(1, 2, 3)), ConditioningEntry(torch.ones(1, 2, 3)))
    conditioning = Conditioning(entries)
    out = call("conditioning.flux_guidance", conditioning=conditioning, guidance=2.5)
    assert [e.guidance for e in out["conditioning"].entries] == [2.5, 2.5]
    assert [e.guidance for e in conditioning.entries] == [None, None]
    assert out["conditioning"].entries[1].embeds is entries[1].embeds


def test_default_sampling_of_an_sd_handle_is_discrete() -> None:
    sampling = sd_model().model_sampling
    assert isinstance(sampling, DiscreteSampling)
    assert sampling.sigma_max == pytest.approx(14.614642, rel=1e-6)
