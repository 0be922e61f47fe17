"""The custom-sampling nodes on tiny-sd15: Sampler Custom (Advanced) equals KSampler exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.events import NodeProgress, Preview
from latentloom.engine.executor import RunResult
from latentloom.graph.budget import estimate
from latentloom.graph.workflow import parse_workflow
from latentloom.sampling.custom import Guider, RandomNoise, SamplerChoice
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.run import run_sampling
from latentloom.sampling.schedules import compute_sigmas, sigmas_karras, sigmas_normal
from latentloom.sampling.sigma_ops import (
    basic_scheduler_sigmas,
    exponential_sigmas,
    flip_sigmas,
    karras_sigmas,
    split_sigmas,
    split_sigmas_by_denoise,
)
from tests.support import load_example, make_engine

STEPS, SEED, CFG = 6, 8, 6.0
# The same as KSampler: single-step, ancestral (per-step noise), SDE (Brownian tree), multistep.
SAME_AS_KSAMPLER = ["euler", "heun", "euler_ancestral", "dpmpp_sde", "dpmpp_2m"]
# KSampler runs these on a schedule one longer with the penultimate sigma dropped; Sampler
# Select (ComfyUI's KSamplerSelect) takes the schedule as given.
DROPS_PENULTIMATE = ["dpm_2", "uni_pc"]


def link(node: str, output: str) -> dict[str, str]:
    return {"node": node, "output": output}


def branches(sampler: str) -> dict[str, Any]:
    """KSampler, Sampler Custom and Sampler Custom Advanced with `sampler` on one latent."""
    prompts = {"positive": link("positive", "conditioning")}
    prompts["negative"] = link("negative", "conditioning")
    return {
        f"ksampler_{sampler}": {
            "type": "sampling.ksampler",
            "inputs": prompts
            | {
                "model": link("checkpoint", "model"),
                "latent": link("latent", "latent"),
                "seed": SEED,
                "steps": STEPS,
                "cfg": CFG,
                "sampler": sampler,
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        f"select_{sampler}": {"type": "sampling.sampler_select", "inputs": {"sampler": sampler}},
        f"custom_{sampler}": {
            "type": "sampling.sampler_custom",
            "inputs": prompts
            | {
                "model": link("checkpoint", "model"),
                "add_noise": True,
                "seed": SEED,
                "cfg": CFG,
                "sampler": link(f"select_{sampler}", "sampler"),
                "sigmas": link("schedule", "sigmas"),
                "latent": link("latent", "latent"),
            },
        },
        f"advanced_{sampler}": {
            "type": "sampling.sampler_custom_advanced",
            "inputs": {
                "noise": link("noise", "noise"),
                "guider": link("guider", "guider"),
                "sampler": link(f"select_{sampler}", "sampler"),
                "sigmas": link("schedule", "sigmas"),
                "latent": link("latent", "latent"),
            },
        },
    }


def graph() -> dict[str, Any]:
    nodes: dict[str, Any] = {
        "checkpoint": {
            "type": "loaders.checkpoint",
            "inputs": {"checkpoint": "tiny-sd15.safetensors"},
        },
        "positive": {
            "type": "conditioning.encode_prompt",
            "inputs": {"clip": link("checkpoint", "clip"), "text": "a red barn in snow"},
        },
        "negative": {
            "type": "conditioning.encode_prompt",
            "inputs": {"clip": link("checkpoint", "clip"), "text": "blurry"},
        },
        "latent": {"type": "latent.empty", "inputs": {"width": 64, "height": 64}},
        "schedule": {
            "type": "sampling.basic_scheduler",
            "inputs": {"model": link("checkpoint", "model"), "scheduler": "normal", "steps": STEPS},
        },
        "noise": {"type": "sampling.random_noise", "inputs": {"seed": SEED}},
        "guider": {
            "type": "sampling.cfg_guider",
            "inputs": {
                "model": link("checkpoint", "model"),
                "positive": link("positive", "conditioning"),
                "negative": link("negative", "conditioning"),
                "cfg": CFG,
            },
        },
        # Split Sigmas: steps 0-4 with the seed's noise, then 4-6 with none.
        "split": {
            "type": "sampling.split_sigmas",
            "inputs": {"sigmas": link("schedule", "sigmas"), "step": 4},
        },
        "no_noise": {"type": "sampling.disable_noise", "inputs": {}},
        "high": {
            "type": "sampling.sampler_custom_advanced",
            "inputs": {
                "noise": link("noise", "noise"),
                "guider": link("guider", "guider"),
                "sampler": link("select_euler", "sampler"),
                "sigmas": link("split", "high_sigmas"),
                "latent": link("latent", "latent"),
            },
        },
        "low": {
            "type": "sampling.sampler_custom_advanced",
            "inputs": {
                "noise": link("no_noise", "noise"),
                "guider": link("guider", "guider"),
                "sampler": link("select_euler", "sampler"),
                "sigmas": link("split", "low_sigmas"),
                "latent": link("high", "output"),
            },
        },
        # Basic Guider: the prompt alone, which is KSampler at cfg 1.
        "basic": {
            "type": "sampling.basic_guider",
            "inputs": {
                "model": link("checkpoint", "model"),
                "conditioning": link("positive", "conditioning"),
            },
        },
        "basic_run": {
            "type": "sampling.sampler_custom_advanced",
            "inputs": {
                "noise": link("noise", "noise"),
                "guider": link("basic", "guider"),
                "sampler": link("select_euler", "sampler"),
                "sigmas": link("schedule", "sigmas"),
                "latent": link("latent", "latent"),
            },
        },
        "save": {"type": "latent.save", "inputs": {"latent": link("low", "output")}},
    }
    cfg_one = branches("euler")["ksampler_euler"]
    nodes["ksampler_cfg_one"] = cfg_one | {"inputs": cfg_one["inputs"] | {"cfg": 1.0}}
    for sampler in SAME_AS_KSAMPLER + DROPS_PENULTIMATE:
        nodes |= branches(sampler)
    return {"schema": "latentloom/workflow", "version": 2, "nodes": nodes}


class Ran:
    def __init__(
        self,
        result: RunResult,
        previews: dict[str, Preview],
        progress: dict[str, list[tuple[int, int]]],
    ) -> None:
        self.result = result
        self.last_preview = previews
        self.progress = progress

    def latent(self, node: str, output: str = "output") -> torch.Tensor:
        samples: torch.Tensor = self.result.outputs[node][output].samples
        return samples


@pytest.fixture(scope="module")
def ran(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    folder = tmp_path_factory.mktemp("custom_sampling")
    engine = make_engine(models_dir, folder / "output", folder)
    workflow = parse_workflow(graph())
    assert engine.validate(workflow) == []
    previews: dict[str, Preview] = {}
    progress: dict[str, list[tuple[int, int]]] = {}

    def on_event(event: object) -> None:
        if isinstance(event, NodeProgress):
            progress.setdefault(event.node, []).append((event.step, event.total))

    result = engine.run(
        workflow,
        targets=[node for node in workflow.nodes if node not in ("save", "no_noise")],
        on_event=on_event,
        on_preview=lambda preview: previews.__setitem__(preview.node, preview),
    )
    return Ran(result, previews, progress)


@pytest.mark.parametrize("sampler", SAME_AS_KSAMPLER)
def test_sampler_custom_with_basic_scheduler_equals_ksampler(ran: Ran, sampler: str) -> None:
    expected = ran.latent(f"ksampler_{sampler}", "latent")
    assert expected.shape == (1, 4, 8, 8)
    assert torch.equal(ran.latent(f"custom_{sampler}"), expected)
    assert torch.equal(ran.latent(f"advanced_{sampler}"), expected)


@pytest.mark.parametrize("sampler", DROPS_PENULTIMATE)
def test_sampler_select_keeps_the_schedule_it_is_given(ran: Ran, sampler: str) -> None:
    custom = ran.latent(f"custom_{sampler}")
    assert not torch.allclose(custom, ran.latent(f"ksampler_{sampler}", "latent"), atol=1e-3)
    # What it does run: the plain 6-step schedule, KSampler's noise and guidance.
    model = ran.result.outputs["checkpoint"]["model"]
    positive = ran.result.outputs["positive"]["conditioning"]
    negative = ran.result.outputs["negative"]["conditioning"]
    sigmas = sigmas_normal(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), STEPS)
    expected = run_sampling(
        Guider(model, positive, negative, CFG),
        SamplerChoice(sampler),
        sigmas,
        torch.zeros(1, 4, 8, 8),
        RandomNoise(SEED),
    )
    assert torch.equal(custom, expected.samples)


def test_split_sigmas_in_two_samplers_equal_one_run(ran: Ran) -> None:
    assert torch.equal(ran.latent("low"), ran.latent("ksampler_euler", "latent"))


def test_basic_guider_is_the_prompt_alone_as_ksampler_at_cfg_one(ran: Ran) -> None:
    expected = ran.latent("ksampler_cfg_one", "latent")
    assert torch.equal(ran.latent("basic_run"), expected)
    assert not torch.allclose(expected, ran.latent("ksampler_euler", "latent"), atol=1e-3)


def test_denoised_output_is_the_last_steps_prediction(ran: Ran) -> None:
    # The high half stops at sigma_4 > 0: its output is still noisy, its prediction is not.
    high, denoised = ran.latent("high"), ran.latent("high", "denoised_output")
    assert not torch.allclose(high, denoised, atol=1e-2)
    assert torch.equal(denoised, ran.last_preview["high"].latent)
    assert ran.last_preview["high"].step == 4


def test_each_sampler_reports_progress_over_its_own_sigmas(ran: Ran) -> None:
    assert ran.progress["high"] == [(step, 4) for step in range(1, 5)]
    assert ran.progress["low"] == [(1, 2), (2, 2)]
    assert ran.progress["custom_euler"] == [(step, STEPS) for step in range(1, STEPS + 1)]


def test_the_scheduler_reports_its_sigmas_for_the_plot(ran: Ran) -> None:
    model = ran.result.outputs["checkpoint"]["model"]
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    expected = compute_sigmas("normal", schedule, STEPS)
    assert torch.equal(ran.result.outputs["schedule"]["sigmas"], expected)
    assert ran.result.reports["schedule"] == {
        "sigmas": [{"output": "sigmas", "values": expected.tolist()}]
    }
    split = ran.result.reports["split"]["sigmas"]
    assert [entry["output"] for entry in split] == ["high_sigmas", "low_sigmas"]
    assert split[0]["values"] == expected[:5].tolist()
    assert split[1]["values"] == expected[4:].tolist()


def test_no_sigmas_return_the_latent_as_both_outputs(
    models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    engine = make_engine(models_dir, tmp_path / "output", input_dir)
    nodes = graph()["nodes"]
    nodes["schedule"]["inputs"]["denoise"] = 0.0
    result = engine.run(parse_workflow(graph() | {"nodes": nodes}), targets=["custom_euler"])
    outputs = result.outputs["custom_euler"]
    assert torch.equal(outputs["output"].samples, torch.zeros(1, 4, 8, 8))
    assert torch.equal(outputs["denoised_output"].samples, torch.zeros(1, 4, 8, 8))


def test_the_example_is_costed_by_the_steps_of_each_half(models_dir: Path) -> None:
    engine = make_engine(models_dir, models_dir / "unused", models_dir)
    job = estimate(load_example("custom_sampling.json"), engine.registry)
    megapixels = 256 * 256 / 1e6
    assert job.costs["rough"].work == pytest.approx(8 * megapixels)
    assert job.costs["finish"].work == pytest.approx(4 * megapixels)
    assert job.costs["finish"].outputs["output"] == job.costs["latent"].outputs["latent"]


SIGMAS = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])


def test_split_sigmas_share_the_sigma_at_the_cut() -> None:
    assert [part.tolist() for part in split_sigmas(SIGMAS, 1)] == [[8.0, 4.0], [4.0, 2.0, 1.0, 0.0]]
    assert [part.tolist() for part in split_sigmas(SIGMAS, 0)] == [[8.0], SIGMAS.tolist()]
    assert [part.tolist() for part in split_sigmas(SIGMAS, 99)] == [SIGMAS.tolist(), []]


def test_split_by_denoise_gives_the_low_half_round_steps_times_denoise() -> None:
    def split(denoise: float) -> list[list[float]]:
        return [part.tolist() for part in split_sigmas_by_denoise(SIGMAS, denoise)]

    # As ComfyUI slices: high = sigmas[:-k], low = sigmas[-(k + 1):] for k low steps.
    assert split(0.5) == [[8.0, 4.0, 2.0], [2.0, 1.0, 0.0]]
    assert split(0.6) == [[8.0, 4.0, 2.0], [2.0, 1.0, 0.0]]  # round(4 x 0.6) = 2
    assert split(0.7) == [[8.0, 4.0], [4.0, 2.0, 1.0, 0.0]]  # round(2.8) = 3
    assert split(1.0) == [[8.0], SIGMAS.tolist()]
    assert split(0.0) == [[], [0.0]]  # sigmas[:-0] is empty


def test_flip_reverses_and_lifts_a_leading_zero() -> None:
    assert flip_sigmas(SIGMAS).tolist() == pytest.approx([0.0001, 1.0, 2.0, 4.0, 8.0])
    assert flip_sigmas(SIGMAS[:2]).tolist() == [4.0, 8.0]
    assert flip_sigmas(SIGMAS[:0]).tolist() == []
    assert SIGMAS[-1] == 0.0  # the input is never changed


def test_karras_and_exponential_schedules_between_explicit_bounds() -> None:
    karras = karras_sigmas(3, 0.1, 10.0, 7.0)
    middle = ((10.0 ** (1 / 7) + 0.1 ** (1 / 7)) / 2) ** 7
    assert karras.tolist() == pytest.approx([10.0, middle, 0.1, 0.0], rel=1e-6)
    assert karras.dtype == torch.float32
    assert exponential_sigmas(3, 0.1, 10.0).tolist() == pytest.approx([10.0, 1.0, 0.1, 0.0])
    with pytest.raises(ValueError, match="sigma_min and sigma_max above 0"):
        exponential_sigmas(3, 0.0, 10.0)


def test_basic_scheduler_keeps_steps_plus_one_sigmas_of_a_longer_schedule(
    ran: Ran,
) -> None:
    model = ran.result.outputs["checkpoint"]["model"]
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    half = basic_scheduler_sigmas(model, "karras", 4, 0.5)
    assert torch.equal(half, sigmas_karras(schedule, 8)[-5:])
    # ddim_uniform makes 31 steps for 30 on SD's schedule; KSampler runs them all, Basic
    # Scheduler keeps the last 31 sigmas, as ComfyUI's does.
    assert len(compute_sigmas("ddim_uniform", schedule, 30)) == 32
    assert len(basic_scheduler_sigmas(model, "ddim_uniform", 30, 1.0)) == 31
    assert basic_scheduler_sigmas(model, "normal", 4, 0.0).tolist() == []
