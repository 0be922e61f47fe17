"""The cost walk and the budget: exact estimates, the bounds specs enforce, pinned messages.

The built-in registry is real; no model is loaded (sizes come from files or are unknown), so
every number here is the estimator's arithmetic, written out.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from latentloom.engine.context import NodeContext
from latentloom.engine.executor import Engine
from latentloom.engine.setup import derive_cost_budget, physical_memory
from latentloom.graph.budget import CostBudget, estimate, over_budget
from latentloom.graph.cost import Batch, Cost, CostQuery
from latentloom.graph.validate import validate
from latentloom.graph.workflow import Link, Workflow, WorkflowNode
from latentloom.models.handles import Latent
from latentloom.node import NodeSpec, Output, SocketType, socket
from latentloom.node_costs import schedule_length
from latentloom.nodes_limits import MAX_FRAMES
from latentloom.registry import Registry, build_registry
from latentloom.server.settings import load_settings
from tests.support import load_example

GIB = 2**30
CPU_BUDGET = CostBudget(12 * GIB, None, 100_000, compute_bytes=4)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry()


def txt2img(width: int = 512, height: int = 512, batch: int = 1, **sampler: float) -> Workflow:
    workflow = load_example("txt2img.json")
    for name, size in {"width": width, "height": height, "batch": batch}.items():
        workflow = workflow.with_input("latent", name, size)
    for name, value in sampler.items():
        workflow = workflow.with_input("sampler", name, value)
    return workflow


def checkpoint_listed(folder: str) -> list[str]:
    return ["tiny-sd15.safetensors"]


def test_batch_sizes_are_float32_latents_and_images() -> None:
    batch = Batch(512, 768, 2, "latent")
    assert batch.latent_bytes == 2 * 4 * 64 * 96 * 4 == 196_608
    assert batch.image_bytes == 2 * 768 * 512 * 3 * 4 == 9_437_184
    assert batch.megapixels == pytest.approx(0.786432)
    assert batch.describe() == "512x768x2"


def test_txt2img_estimate_is_exact(registry: Registry) -> None:
    job = estimate(txt2img(512, 512, 2, steps=20), registry, compute_bytes=4, one_pool=True)
    latent = 2 * 4 * 64 * 64 * 4  # 131,072
    image = 2 * 512 * 512 * 12  # 6,291,456
    unet = 8192 * 4 * 64 * 64 * (2 * 2)  # per latent pixel, fp32, 2 images x (pos + neg)
    sampler_peak = latent + latent + unet + 8 * latent  # held: empty + sampled
    decode_peak = 2 * latent + image + 4096 * 512 * 512 + image  # one image, frames joined
    assert job.costs["sampler"].working_bytes == unet + 8 * latent
    assert sampler_peak == 538_181_632
    assert job.host_peak == decode_peak == 1_086_586_880
    assert job.host_peak_node == "decode"
    assert job.work == pytest.approx(20 * 2 * 0.262144)


def test_two_pools_keep_weights_and_working_sets_on_the_device(registry: Registry) -> None:
    job = estimate(txt2img(1024, 1024, 1), registry, compute_bytes=2, one_pool=False)
    latent = 4 * 128 * 128 * 4
    image = 1024 * 1024 * 12
    assert job.device_peak == 4096 * 1024 * 1024  # the VAE decode working set (fp32)
    assert job.device_peak_node == "decode"
    assert job.host_peak == 2 * latent + 2 * image  # held + the frames being joined
    assert job.host_peak_node == "decode"


def test_checkpoint_weights_come_from_the_file_size(engine: Engine, models_dir: Path) -> None:
    size = (models_dir / "checkpoints" / "tiny-sd15.safetensors").stat().st_size
    from latentloom.engine.file_sizes import FolderFiles

    files = FolderFiles(engine.settings.folders)
    job = estimate(txt2img(), engine.registry, files, compute_bytes=4)
    assert job.costs["checkpoint"].weights_bytes == 2 * size  # fp16 file, fp32 on the CPU
    job = estimate(txt2img(), engine.registry, files, compute_bytes=2)
    assert job.costs["checkpoint"].weights_bytes == size


def test_memory_over_budget_names_the_size_and_where_it_peaks(registry: Registry) -> None:
    workflow = txt2img(8192, 8192, 64)
    problems = validate(workflow, registry, checkpoint_listed, budget=CPU_BUDGET)
    assert [p.model_dump() for p in problems] == [
        {
            "node": "latent",
            "input": None,
            "code": "over_budget",
            "message": 'node "latent" (Empty Latent): 8192x8192x64 needs an estimated 4106.0 GiB '
            'of memory at node "sampler" (KSampler); the budget is 12.0 GiB '
            "(memory_budget_bytes in the config file)",
        }
    ]


def test_device_memory_is_its_own_budget(registry: Registry) -> None:
    budget = CostBudget(100 * GIB, 2 * GIB, 100_000, compute_bytes=2)
    problems = validate(txt2img(2048, 2048, 1), registry, checkpoint_listed, budget=budget)
    # A full decode (16 GiB) won't fit, so VAE Decode counts as tiled; the sampler peaks.
    assert [p.message for p in problems] == [
        'node "latent" (Empty Latent): 2048x2048x1 needs an estimated 2.0 GiB of device '
        'memory at node "sampler" (KSampler); the budget is 2.0 GiB '
        "(device_memory_budget_bytes in the config file)"
    ]


def test_work_over_budget_names_the_sampler(registry: Registry) -> None:
    budget = CostBudget(10_000 * GIB, None, 1_000, compute_bytes=4)
    problems = validate(
        txt2img(1024, 1024, 4, steps=300), registry, checkpoint_listed, budget=budget
    )
    assert [(p.node, p.code, p.message) for p in problems] == [
        (
            "sampler",
            "over_budget",
            'node "sampler" (KSampler): the job needs 1,258 megapixel-steps of work (steps x '
            "images x megapixels; 1,258 here); the budget is 1,000 "
            "(work_budget_megapixel_steps in the config file)",
        )
    ]


def test_within_budget_nothing_is_refused(registry: Registry) -> None:
    assert validate(txt2img(1024, 1024, 4), registry, checkpoint_listed, budget=CPU_BUDGET) == []


@pytest.mark.parametrize(
    ("steps", "denoise", "length"),
    [
        (20, 1.0, 20),
        (20, 0.5, 40),
        (20, 0.0, 0),
        (1000, 1e-9, 999_999_999_999),
        (1, 5e-324, math.inf),
    ],
)
def test_schedule_length_is_steps_over_denoise(steps: int, denoise: float, length: float) -> None:
    assert schedule_length(steps, denoise) == length


def test_a_denoise_near_zero_is_refused_before_any_schedule_is_built(registry: Registry) -> None:
    workflow = txt2img(steps=1, denoise=5e-324)
    problems = validate(workflow, registry, checkpoint_listed)
    assert [p.message for p in problems] == [
        "node \"sampler\" (KSampler) input 'denoise': steps / denoise = 1 / 5e-324 asks for an "
        "unbounded schedule; the most is 10,000: raise denoise to at least 0.0001 or lower steps"
    ]
    assert validate(txt2img(steps=20, denoise=0.002), registry, checkpoint_listed) == []


def test_interpolation_refuses_more_frames_than_max_frames_when_run() -> None:
    from latentloom.registry import load_pack_folder

    registry = Registry()
    load_pack_folder(registry, Path(__file__).parents[2] / "nodes")
    function = registry.specs["latent.interpolate"].function
    latent = Latent(torch.zeros(1, 4, 8, 8), None)
    context = NodeContext.__new__(NodeContext)
    with pytest.raises(ValueError, match="1,025 ratios would make 1,025 frames; the most is 1,024"):
        function(context, a=latent, b=latent, ratio=[0.5] * (MAX_FRAMES + 1), mode="lerp")
    frames = function(context, a=latent, b=latent, ratio=[0.5] * 3, mode="lerp")["latent"]
    assert frames.samples.shape[0] == 3


def test_values_from_value_nodes_are_checked_and_weighed(registry: Registry) -> None:
    workflow = txt2img()
    workflow.nodes["side"] = WorkflowNode(type="utility.int", inputs={"value": 100_000})
    workflow.nodes["latent"].inputs["width"] = Link(node="side", output="value")
    problems = validate(workflow, registry, checkpoint_listed, budget=CPU_BUDGET)
    assert [p.model_dump() for p in problems] == [
        {
            "node": "latent",
            "input": "width",
            "code": "out_of_range",
            "message": 'node "latent" (Empty Latent) input \'width\' (from node "side"): '
            "100000 is outside the allowed range [64, 8192]",
        }
    ]
    workflow.nodes["side"].inputs["value"] = 1024
    job = estimate(workflow, registry)
    assert job.estimates[("latent", "latent")] == Batch(1024, 512, 1, "latent")


def _spec(node_id: str, cost: object = None) -> NodeSpec:
    return NodeSpec(
        id=node_id,
        display_name=node_id,
        category="test",
        inputs=(socket("latent", SocketType.LATENT),),
        outputs=(Output("latent", SocketType.LATENT),),
        function=lambda ctx, latent: {"latent": latent},
        cost=cost,  # type: ignore[arg-type]
    )


def _with_pack_node(registry: Registry, spec: NodeSpec) -> tuple[Registry, Workflow]:
    extended = Registry(dict(registry.specs), dict(registry.pack_of))
    extended.register_pack("test_pack", [spec])
    workflow = txt2img(1024, 1024, 1)
    workflow.nodes["pack"] = WorkflowNode(
        type=spec.id, inputs={"latent": Link(node="latent", output="latent")}
    )
    workflow.nodes["sampler"].inputs["latent"] = Link(node="pack", output="latent")
    return extended, workflow


def test_a_node_without_a_cost_passes_its_size_on(registry: Registry) -> None:
    extended, workflow = _with_pack_node(registry, _spec("test.plain"))
    job = estimate(workflow, extended)
    assert job.estimates[("pack", "latent")] == Batch(1024, 1024, 1, "latent")
    assert job.estimates[("sampler", "latent")] == Batch(1024, 1024, 1, "latent")


def test_a_failing_cost_function_is_a_problem_naming_the_node(registry: Registry) -> None:
    def broken(query: CostQuery) -> Cost:
        raise KeyError("width")

    extended, workflow = _with_pack_node(registry, _spec("test.broken", broken))
    problems = validate(workflow, extended, checkpoint_listed, budget=CPU_BUDGET)
    assert [p.model_dump() for p in problems] == [
        {
            "node": "pack",
            "input": None,
            "code": "cost_failed",
            "message": "node \"pack\" (test.broken): its cost estimate failed (KeyError: 'width'); "
            "the pack that declares 'test.broken' needs fixing",
        }
    ]


def test_what_does_not_run_costs_nothing(registry: Registry) -> None:
    workflow = txt2img(8192, 8192, 64)
    assert over_budget(estimate(workflow, registry), workflow, registry, CPU_BUDGET)
    workflow.nodes["save"].mode = "mute"
    problems = validate(workflow, registry, checkpoint_listed, budget=CPU_BUDGET)
    assert [p.code for p in problems] == ["nothing_to_run"]


def test_default_budget_comes_from_the_machine() -> None:
    budget = derive_cost_budget(torch.device("cpu"), torch.float32)
    assert budget == CostBudget(int(physical_memory() * 0.75), None, 100_000, compute_bytes=4)
    chosen = derive_cost_budget(
        torch.device("cpu"), torch.float16, memory_bytes=5 * GIB, work_megapixel_steps=10
    )
    assert chosen == CostBudget(5 * GIB, None, 10, compute_bytes=2)


def test_the_config_file_sets_the_budget(tmp_path: Path) -> None:
    config = tmp_path / "latentloom.toml"
    config.write_text("memory_budget_bytes = 1073741824\nwork_budget_megapixel_steps = 500.0\n")
    settings = load_settings(config, {})
    assert settings.cost_budget() == {
        "memory_budget_bytes": 2**30,
        "device_memory_budget_bytes": None,
        "work_budget_megapixel_steps": 500.0,
    }


def test_the_engine_refuses_an_over_budget_run_before_any_work(engine: Engine) -> None:
    from latentloom.graph.validate import WorkflowInvalid

    engine.budget = CPU_BUDGET
    with pytest.raises(WorkflowInvalid) as refused:
        engine.run(txt2img(8192, 8192, 64))
    assert [p.code for p in refused.value.problems] == ["over_budget"]
    assert len(engine.cache) == 0
