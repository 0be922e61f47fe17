"""KSampler Advanced: ComfyUI's step range, noise switch and leftover noise; two halves = one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.engine.executor import Engine
from latentloom.graph.budget import estimate
from latentloom.graph.workflow import parse_workflow
from latentloom.models.handles import DiffusionModel
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.run import sample, sample_advanced
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.schedules import sigmas_karras
from latentloom.sampling.sigma_ops import advanced_range
from tests.sampling.tiny_models import LATENT_SHAPE, conditioning, latent_noise, tiny_model
from tests.support import load_example, make_engine

STEPS, SPLIT, SEED = 10, 5, 4
FULL: dict[str, Any] = {"steps": STEPS, "cfg": 5.0, "scheduler": "karras", "seed": SEED}


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    return tiny_model()


def advanced(model: DiffusionModel, latent: Tensor, sampler: str, **kw: Any) -> Tensor:
    options = FULL | {"start_at_step": 0, "end_at_step": 10000} | kw
    options.setdefault("add_noise", True)
    options.setdefault("return_with_leftover_noise", False)
    return sample_advanced(
        model, conditioning(1), conditioning(2), latent, sampler=sampler, **options
    )


def one_run(model: DiffusionModel, sampler: str) -> Tensor:
    latent = torch.zeros(LATENT_SHAPE)
    return sample(model, conditioning(1), conditioning(2), latent, sampler=sampler, **FULL)


def two_halves(model: DiffusionModel, sampler: str) -> Tensor:
    first = advanced(
        model,
        torch.zeros(LATENT_SHAPE),
        sampler,
        end_at_step=SPLIT,
        return_with_leftover_noise=True,
    )
    return advanced(model, first, sampler, add_noise=False, start_at_step=SPLIT)


# Samplers that take one step at a time from x alone (dpm_2 on KSampler's dropped-penultimate
# schedule, which both halves share).
@pytest.mark.parametrize("sampler", ["euler", "heun", "dpm_2", "ddim"])
def test_two_halves_equal_one_ksampler_run_bit_for_bit(model: DiffusionModel, sampler: str) -> None:
    assert torch.equal(two_halves(model, sampler), one_run(model, sampler))


# Multistep samplers start their history afresh at the split, as in ComfyUI: close, not equal.
# Measured relative L2 differences at 10 steps split at 5: lms 0.02 %, dpmpp_2m 0.16 %,
# uni_pc 0.82 %.
@pytest.mark.parametrize("sampler", ["lms", "dpmpp_2m", "uni_pc"])
def test_multistep_samplers_restart_their_history_and_stay_close(
    model: DiffusionModel, sampler: str
) -> None:
    split, whole = two_halves(model, sampler), one_run(model, sampler)
    assert not torch.equal(split, whole)
    assert float((split - whole).norm() / whole.norm()) < 0.02


def test_ancestral_samplers_draw_fresh_step_noise_in_the_second_half(
    model: DiffusionModel,
) -> None:
    # Each half seeds its own per-step noise generator, so the second half repeats the first
    # half's noise draws rather than continuing them (ComfyUI behaves the same).
    assert not torch.allclose(
        two_halves(model, "euler_ancestral"), one_run(model, "euler_ancestral"), atol=1e-3
    )


@pytest.mark.parametrize("sampler", ["euler", "dpm_2", "euler_ancestral", "dpmpp_sde", "uni_pc"])
def test_the_whole_range_with_noise_is_ksampler(model: DiffusionModel, sampler: str) -> None:
    assert torch.equal(advanced(model, torch.zeros(LATENT_SHAPE), sampler), one_run(model, sampler))


def test_the_range_is_cut_then_zeroed_unless_the_leftover_noise_is_returned() -> None:
    sigmas = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.0])
    cut = lambda start, end, leftover: advanced_range(sigmas, start, end, leftover).tolist()  # noqa: E731
    assert cut(0, 10000, False) == [10.0, 5.0, 2.0, 1.0, 0.0]
    assert cut(0, 2, True) == [10.0, 5.0, 2.0]
    assert cut(0, 2, False) == [10.0, 5.0, 0.0]
    assert cut(1, 3, False) == [5.0, 2.0, 0.0]
    assert cut(2, 10000, True) == [2.0, 1.0, 0.0]
    assert cut(3, 3, False) == [] and cut(4, 10000, False) == [] and cut(9, 2, True) == []
    assert sigmas.tolist() == [10.0, 5.0, 2.0, 1.0, 0.0]  # the input is never changed


@pytest.mark.parametrize("add_noise", [True, False])
def test_an_empty_range_returns_the_latent_unchanged(
    model: DiffusionModel, add_noise: bool
) -> None:
    latent = torch.randn(LATENT_SHAPE)
    result = advanced(model, latent, "euler", add_noise=add_noise, start_at_step=STEPS)
    assert torch.equal(result, latent)


def starts(model: DiffusionModel, latent: Tensor, **kw: Any) -> list[tuple[int, Tensor]]:
    seen: list[tuple[int, Tensor]] = []
    advanced(model, latent, "euler", callback=lambda i, n, x, d: seen.append((n, x)), **kw)
    return seen


def test_noise_is_scaled_fully_only_from_the_first_step(model: DiffusionModel) -> None:
    latent = torch.full(LATENT_SHAPE, 0.5)
    sigmas = sigmas_karras(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), STEPS)
    from_start = starts(model, latent, end_at_step=3)
    assert [n for n, _ in from_start] == [3, 3, 3]
    full_scale = torch.sqrt(1.0 + sigmas[0] ** 2.0)
    assert torch.equal(from_start[0][1], latent_noise(SEED) * full_scale + latent)
    # Starting part-way with noise added (a plain img2img at step 4) scales by that sigma.
    part_way = starts(model, latent, start_at_step=4)
    assert [n for n, _ in part_way] == [STEPS - 4] * (STEPS - 4)
    assert torch.equal(part_way[0][1], latent_noise(SEED) * sigmas[4] + latent)


def test_without_added_noise_the_latent_is_sampled_as_it_is(model: DiffusionModel) -> None:
    latent = torch.randn(LATENT_SHAPE)
    seen = starts(model, latent, add_noise=False, start_at_step=SPLIT)
    assert torch.equal(seen[0][1], latent)


def test_every_sampler_name_is_accepted(model: DiffusionModel) -> None:
    # One step each: the range logic must not depend on the sampler's kind.
    for name in SAMPLERS:
        result = advanced(model, torch.zeros(LATENT_SHAPE), name, start_at_step=STEPS - 1)
        assert result.shape == LATENT_SHAPE and bool(torch.isfinite(result).all()), name


def advanced_graph(**first: Any) -> dict[str, Any]:
    """tiny-sd15: one KSampler and two KSampler Advanced halves over the same empty latent."""
    link = lambda node, output: {"node": node, "output": output}  # noqa: E731
    shared = {
        "model": link("checkpoint", "model"),
        "positive": link("positive", "conditioning"),
        "negative": link("negative", "conditioning"),
        "seed": 8,
        "steps": 6,
        "cfg": 6.0,
        "sampler": "heun",
        "scheduler": "normal",
    }
    return {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {
            "checkpoint": {
                "type": "loaders.checkpoint",
                "inputs": {"checkpoint": "tiny-sd15.safetensors"},
            },
            "positive": {
                "type": "conditioning.encode_prompt",
                "inputs": {"clip": link("checkpoint", "clip"), "text": "a red barn"},
            },
            "negative": {
                "type": "conditioning.encode_prompt",
                "inputs": {"clip": link("checkpoint", "clip"), "text": "blurry"},
            },
            "latent": {"type": "latent.empty", "inputs": {"width": 64, "height": 64}},
            "whole": {
                "type": "sampling.ksampler",
                "inputs": shared | {"latent": link("latent", "latent"), "denoise": 1.0},
            },
            "first": {
                "type": "sampling.ksampler_advanced",
                "inputs": shared
                | {
                    "latent": link("latent", "latent"),
                    "add_noise": True,
                    "end_at_step": 4,
                    "return_with_leftover_noise": True,
                }
                | first,
            },
            "second": {
                "type": "sampling.ksampler_advanced",
                "inputs": shared
                | {"latent": link("first", "latent"), "add_noise": False, "start_at_step": 4},
            },
            "save": {"type": "latent.save", "inputs": {"latent": link("second", "latent")}},
        },
    }


def test_the_node_halves_equal_the_ksampler_node(engine: Engine) -> None:
    workflow = parse_workflow(advanced_graph())
    assert engine.validate(workflow) == []
    result = engine.run(workflow, targets=["whole", "second"])
    whole, second = result.outputs["whole"]["latent"], result.outputs["second"]["latent"]
    assert second.samples.shape == (1, 4, 8, 8) and second.family.name == "sd15"
    assert torch.equal(second.samples, whole.samples)


def test_each_half_is_costed_by_the_steps_it_runs(models_dir: Path) -> None:
    engine = make_engine(models_dir, models_dir / "unused", models_dir)
    job = estimate(load_example("base_refiner.json"), engine.registry)
    megapixels = 256 * 256 / 1e6
    assert job.costs["base_steps"].work == pytest.approx(9 * megapixels)  # steps 0-9
    assert job.costs["refine"].work == pytest.approx(3 * megapixels)  # steps 9-12
    assert job.costs["refine"].outputs["latent"] == job.costs["latent"].outputs["latent"]
