"""The cost budget under managed residency: per node, the models its inputs hold, on the device.

With `CostBudget.residency_bytes` set (the engine sets it when `residency.manages`), the device
peak is the largest over nodes of the models each node holds (loaded whole while they fit the
residency budget less the node's working set, else streamed: their largest block) plus its
working set, and host memory holds every loaded model's home copy. Without it, every loaded
model counts on the device for the whole job, as before. Model sizes come from a table of
file sizes (compute in fp16: a file's bytes are its weights), so each number is written out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.graph.budget import CostBudget, estimate, over_budget
from latentloom.graph.cost import Batch, Cost, CostQuery
from latentloom.graph.placement import STREAMED_BLOCK_SHARE, ModelWeights, Placement, place
from latentloom.graph.validate import validate
from latentloom.graph.workflow import Link, Workflow, WorkflowNode
from latentloom.models.folders import ModelFolders
from latentloom.node import NodeSpec, Output, SocketType, socket
from latentloom.registry import Registry, build_registry
from tests.support import load_example

GIB = 2**30
MIB = 2**20
BASE, REFINER = "tiny-sdxl.safetensors", "tiny-sdxl-refiner.safetensors"
SIZES = {
    BASE: 6 * GIB,
    REFINER: 5 * GIB,
    "tiny-flux-schnell.safetensors": 24 * GIB,
    "tiny-clip-l.safetensors": 256 * MIB,
    "tiny-t5xxl.safetensors": 9 * GIB,
    "tiny-flux-ae.safetensors": 160 * MIB,
    "tiny-sd15.safetensors": 2 * GIB,
    "tiny-controlnet-sd15.safetensors": 700 * MIB,
    "tiny-ip-adapter-sd15.safetensors": 40 * MIB,
    "tiny-clip-vision.safetensors": 600 * MIB,
}
# 256x256 latents: a sampler's working set (fp16 UNet activations for the positive and
# negative prompts, eight latent copies) and VAE Decode's (4 KiB per pixel, one image).
LATENT = 4 * 32 * 32 * 4
SAMPLER = 8192 * 2 * 32 * 32 * 2 + 8 * LATENT  # 33,685,504
DECODE = 4096 * 256 * 256  # 268,435,456
IMAGE = 256 * 256 * 3 * 4


class SizedFiles:
    """Model files of the sizes in `SIZES`; no images."""

    def size(self, folder: str, name: str) -> int | None:
        return SIZES.get(name)

    def image_size(self, name: str) -> tuple[int, int] | None:
        return None


def listed(folder: str) -> list[str]:
    return list(SIZES)


def budget(device: int, residency: int | None) -> CostBudget:
    return CostBudget(100 * GIB, device, 100_000, compute_bytes=2, residency_bytes=residency)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry()


@pytest.fixture(scope="module")
def base_refiner() -> Workflow:
    return load_example("base_refiner.json")


def test_two_checkpoints_count_one_at_a_time_on_the_device(
    registry: Registry, base_refiner: Workflow
) -> None:
    job = estimate(base_refiner, registry, SizedFiles(), budget=budget(8 * GIB, 8 * GIB))
    assert job.placements["base_steps"] == Placement(loaded=("base",), bytes=6 * GIB)
    assert job.placements["refine"] == Placement(loaded=("refiner",), bytes=5 * GIB)
    assert job.placements["decode"] == Placement(loaded=("refiner",), bytes=5 * GIB)
    assert job.placements["base"] == Placement()  # a loader leaves its weights at home
    assert job.costs["base_steps"].working_bytes == SAMPLER
    assert job.costs["decode"].working_bytes == DECODE
    # base_steps: 6 GiB + 32.1 MiB beats decode: 5 GiB + 256 MiB.
    assert (job.device_peak, job.device_peak_node) == (6 * GIB + SAMPLER, "base_steps")
    # Host: both checkpoints' home copies, three latents and the image held, the join's copy.
    assert (job.host_peak, job.host_peak_node) == (11 * GIB + 3 * LATENT + 2 * IMAGE, "decode")
    assert (
        validate(
            base_refiner, registry, listed, budget=budget(8 * GIB, 8 * GIB), files=SizedFiles()
        )
        == []
    )


def test_unmanaged_every_loaded_model_stays_on_the_device(
    registry: Registry, base_refiner: Workflow
) -> None:
    job = estimate(base_refiner, registry, SizedFiles(), budget=budget(8 * GIB, None))
    assert job.placements == {}
    # Both checkpoints are loaded before the first sampler runs (VAE Decode tiles: its
    # share of the budget is already gone, so the samplers peak).
    assert job.costs["decode"].working_bytes == 4096 * 64 * 64
    assert (job.device_peak, job.device_peak_node) == (11 * GIB + SAMPLER, "base_steps")
    assert (job.host_peak, job.host_peak_node) == (3 * LATENT + 2 * IMAGE, "decode")
    problems = validate(
        base_refiner, registry, listed, budget=budget(8 * GIB, None), files=SizedFiles()
    )
    assert [(p.node, p.code, p.message) for p in problems] == [
        (
            "latent",
            "over_budget",
            'node "latent" (Empty Latent): 256x256x1 needs an estimated 11.0 GiB of device '
            'memory at node "base_steps" (KSampler (Advanced)); the budget is 8.0 GiB '
            "(device_memory_budget_bytes in the config file)",
        )
    ]


def flux(width: int = 256) -> Workflow:
    workflow = load_example("flux_schnell.json")
    return workflow.with_input("latent", "width", width).with_input("latent", "height", width)


def test_a_model_bigger_than_the_budget_streams_its_largest_block(registry: Registry) -> None:
    limit = budget(20 * GIB, 20 * GIB)
    job = estimate(flux(), registry, SizedFiles(), budget=limit)
    text = 256 * MIB + 9 * GIB  # CLIP-L and T5-XXL: one Dual CLIP Loader, one model
    assert job.placements["positive"] == Placement(loaded=("clip",), bytes=text)
    block = int(24 * GIB * STREAMED_BLOCK_SHARE)
    assert job.placements["sampler"] == Placement(streamed=("model",), bytes=block)
    assert job.placements["decode"] == Placement(loaded=("vae",), bytes=2 * 160 * MIB)  # fp32
    assert (job.device_peak, job.device_peak_node) == (block + SAMPLER, "sampler")
    all_weights = 24 * GIB + text + 320 * MIB
    assert job.host_peak == all_weights + 2 * LATENT + 2 * IMAGE
    assert validate(flux(), registry, listed, budget=limit, files=SizedFiles()) == []
    # Unmanaged, the same job needs every model at once: refused.
    job = estimate(flux(), registry, SizedFiles(), budget=budget(20 * GIB, None))
    assert (job.device_peak, job.device_peak_node) == (all_weights + SAMPLER, "sampler")


def test_an_over_budget_streamed_job_names_the_node_the_number_and_what_streams(
    registry: Registry,
) -> None:
    limit = budget(12 * GIB, 12 * GIB)
    workflow = flux(2048)
    job = estimate(workflow, registry, SizedFiles(), budget=limit)
    latent = 4 * 256 * 256 * 4
    working = 8192 * 2 * 256 * 256 * 2 + 8 * latent  # 2 GiB + 8 MiB
    assert job.placements["sampler"].streamed == ("model",)
    assert (job.device_peak, job.device_peak_node) == (12 * GIB + working, "sampler")
    assert [r.message for r in over_budget(job, workflow, registry, limit)] == [
        '2048x2048x1 needs an estimated 14.0 GiB of device memory at node "sampler" '
        '(KSampler) (12.0 GiB of it model weights, streaming the model of "model" (Load '
        "Diffusion Model)); the budget is 12.0 GiB (device_memory_budget_bytes in the config "
        "file)"
    ]


def test_placement_loads_in_order_and_streams_what_does_not_fit() -> None:
    models = [ModelWeights("a", 6), ModelWeights("b", 5, largest_block_bytes=2)]
    assert place(models, 11) == Placement(loaded=("a", "b"), bytes=11)
    assert place(models, 10) == Placement(loaded=("a",), streamed=("b",), bytes=8)
    assert place(models, 5) == Placement(loaded=("b",), streamed=("a",), bytes=5 + 3)
    assert place(models, 0) == Placement(streamed=("a", "b"), bytes=3 + 2)


def test_the_engine_sets_the_residency_budget_when_it_manages_residency(
    models_dir: Path, tmp_path: Path
) -> None:
    cost = budget(8 * GIB, None)

    def engine(device_budget_bytes: int | None) -> Engine:
        folders = Folders(ModelFolders.of([models_dir]), tmp_path)
        settings = RunSettings(
            torch.device("cpu"),
            torch.float32,
            folders,
            tmp_path / "output",
            device_budget_bytes=device_budget_bytes,
        )
        return Engine(build_registry(entry_point_packs=False), settings, OutputCache(2**20), cost)

    assert engine(None).budget == cost  # the CPU unmanaged: the budget as given
    managed = engine(3 * GIB).budget
    assert managed == dataclasses.replace(cost, residency_bytes=3 * GIB)


def test_one_pool_managed_counts_home_copies_and_the_device_copies_together(
    registry: Registry, base_refiner: Workflow
) -> None:
    """MPS, or the CPU with a device budget: the device copies sit in the same memory."""
    limit = CostBudget(100 * GIB, None, 100_000, compute_bytes=2, residency_bytes=8 * GIB)
    job = estimate(base_refiner, registry, SizedFiles(), one_pool=True, budget=limit)
    assert job.device_peak == 0
    # Both homes, the base on the device, two latents held, the sampler's working set.
    assert (job.host_peak, job.host_peak_node) == (17 * GIB + 2 * LATENT + SAMPLER, "base_steps")
    assert job.memory_left["decode"] == 100 * GIB - 11 * GIB - 3 * LATENT - 5 * GIB


@pytest.mark.parametrize(
    ("example", "held"),
    [
        # Control attaches to the conditioning entries: the sampler holds the ControlNet too.
        (
            "controlnet_canny.json",
            {"apply": ("controlnet",), "sampler": ("checkpoint", "controlnet")},
        ),
        # The adapter's patches ride on the MODEL; the CLIP vision model only encodes the image.
        (
            "ip_adapter.json",
            {
                "apply": ("checkpoint", "ipadapter", "clip_vision"),
                "sampler": ("checkpoint", "ipadapter"),
            },
        ),
    ],
)
def test_models_follow_the_links_that_hold_them(
    registry: Registry, example: str, held: dict[str, tuple[str, ...]]
) -> None:
    job = estimate(load_example(example), registry, SizedFiles(), budget=budget(8 * GIB, 8 * GIB))
    assert {node: job.placements[node].loaded for node in held} == held
    assert job.placements["positive"].loaded == ("checkpoint",)  # encoding holds the CLIP
    assert job.placements["decode"].loaded == ("checkpoint",)


def test_a_pack_node_that_loads_and_uses_its_weights_holds_them_itself(
    registry: Registry, base_refiner: Workflow
) -> None:
    """Weights no output hands on are on the device while their node runs; a declared
    largest block is what streams."""

    def loads_and_runs(query: CostQuery) -> Cost:
        latent = query.batch("latent")
        assert latent is not None
        return Cost(outputs={"latent": latent}, weights_bytes=9 * GIB, largest_block_bytes=GIB)

    spec = NodeSpec(
        id="test.upscaler",
        display_name="test.upscaler",
        category="test",
        inputs=(socket("latent", SocketType.LATENT),),
        outputs=(Output("latent", SocketType.LATENT),),
        function=lambda ctx, latent: {"latent": latent},
        cost=loads_and_runs,
    )
    extended = Registry(dict(registry.specs), dict(registry.pack_of))
    extended.register_pack("test_pack", [spec])
    workflow = base_refiner.model_copy(deep=True)
    workflow.nodes["pack"] = WorkflowNode(
        type=spec.id, inputs={"latent": Link(node="base_steps", output="latent")}
    )
    workflow.nodes["refine"].inputs["latent"] = Link(node="pack", output="latent")
    job = estimate(workflow, extended, SizedFiles(), budget=budget(8 * GIB, 8 * GIB))
    assert job.estimates[("pack", "latent")] == Batch(256, 256, 1, "latent")
    assert job.placements["pack"] == Placement(streamed=("pack",), bytes=GIB)
    assert job.placements["refine"] == Placement(loaded=("refiner",), bytes=5 * GIB)
