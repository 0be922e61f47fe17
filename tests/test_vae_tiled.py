"""Tiled VAE decode and encode against the full ones on the tiny SD 1.5 VAE, and VAE Decode
switching to tiles by itself when the budget leaves no room for a full decode.

Stated differences (random 256² latent, seed 0): decoding with tile_size 128 and 32 pixels of
overlap (3 x 3 tiles of 112) differs from the full decode by at most 0.445 and 0.0253 on
average (pixels in 0..1); tile_size 192 (2 x 2 tiles of 144): 0.450 and 0.0218; a tiled
encode (128/32) by 0.075 and 0.0097. The tiny VAE's group norms and mid-block attention see
only their tile, so these are larger than a trained VAE's; bench/tiled_vae.py measures
the full-size VAE at 1024².
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.graph.budget import CostBudget, estimate
from latentloom.graph.cost import Batch
from latentloom.models.handles import Vae
from latentloom.models.load import load_checkpoint
from latentloom.node_costs import auto_decode_tile
from latentloom.registry import build_registry
from latentloom.vae import decode, encode
from latentloom.vae_tiled import decode_tiled, effective_overlap, encode_tiled
from tests.support import load_example

MIB = 2**20


@pytest.fixture(scope="module")
def vae(models_dir: Path) -> Vae:
    loaded = load_checkpoint(
        models_dir / "checkpoints" / "tiny-sd15.safetensors", device=None, dtype=None
    )
    return loaded.vae


@pytest.fixture(scope="module")
def latent() -> torch.Tensor:
    return torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))


def test_one_tile_covering_the_image_is_the_full_decode_bit_for_bit(
    vae: Vae, latent: torch.Tensor
) -> None:
    assert torch.equal(decode_tiled(vae, latent, tile_size=256, overlap=64), decode(vae, latent))


@pytest.mark.parametrize(("tile", "largest", "mean"), [(128, 0.46, 0.027), (192, 0.46, 0.023)])
def test_tiled_decode_stays_within_the_stated_difference(
    vae: Vae, latent: torch.Tensor, tile: int, largest: float, mean: float
) -> None:
    difference = (decode_tiled(vae, latent, tile_size=tile, overlap=32) - decode(vae, latent)).abs()
    assert difference.shape == (1, 256, 256, 3)
    assert 0 < difference.max().item() <= largest
    assert difference.mean().item() <= mean


def test_tiled_encode_stays_within_the_stated_difference(vae: Vae, latent: torch.Tensor) -> None:
    image = decode(vae, latent)
    full = encode(vae, image)
    tiled = encode_tiled(vae, image, tile_size=128, overlap=32)
    assert tiled.shape == full.shape == (1, 4, 32, 32)
    difference = (tiled - full).abs()
    assert difference.max().item() <= 0.08  # measured 0.075; latents reach 0.26 here
    assert difference.mean().item() <= 0.011  # measured 0.0097
    # One tile: the same encode, up to the kernels memory layout picks (float rounding).
    one_tile = encode_tiled(vae, image, tile_size=256, overlap=0)
    torch.testing.assert_close(one_tile, full, rtol=0, atol=1e-5)


def test_an_overlap_past_a_quarter_of_the_tile_is_cut_to_a_quarter() -> None:
    assert effective_overlap(128, 64) == 32
    assert effective_overlap(128, 32) == 32
    assert effective_overlap(512, 64) == 64
    assert effective_overlap(64, 0) == 0


def test_tiles_report_progress_across_the_batch(vae: Vae) -> None:
    seen: list[tuple[int, int]] = []
    latents = torch.zeros(2, 4, 16, 24)
    decode_tiled(vae, latents, tile_size=128, overlap=32, progress=lambda *p: seen.append(p))
    assert seen == [(done, 4) for done in range(1, 5)]  # 1 x 2 tiles per image


@pytest.mark.parametrize(
    ("memory_left", "tile"),
    [
        (None, None),
        (256 * MIB + 2 * 786_432, None),  # exactly room for the full 256x256 decode
        (256 * MIB + 2 * 786_432 - 1, 128),  # one byte short: 128 px tiles (64 MiB)
        (64 * MIB + 2 * 786_432, 128),
        (64 * MIB, 64),
        (1 * MIB, 64),  # not even 64 px fits: 64, and the budget refuses the job
    ],
)
def test_vae_decode_tiles_only_when_a_full_decode_would_not_fit(
    memory_left: int | None, tile: int | None
) -> None:
    assert auto_decode_tile(Batch(256, 256, 1, "latent"), memory_left) == tile


def test_the_budget_walk_tells_each_node_its_memory_left(models_dir: Path) -> None:
    budget = CostBudget(200 * MIB, None, 100_000, compute_bytes=4)
    job = estimate(load_example("txt2img.json"), build_registry(), budget=budget, one_pool=True)
    latent = 4 * 32 * 32 * 4  # 256x256, one image
    assert job.memory_left["checkpoint"] == 200 * MIB
    assert job.memory_left["decode"] == 200 * MIB - 2 * latent  # empty + sampled latents held
    assert job.costs["decode"].working_bytes == 4096 * 128 * 128  # tiled: 128 px tiles
    two_pools = CostBudget(200 * MIB, 5 * MIB, 100_000, compute_bytes=2)
    job = estimate(load_example("txt2img.json"), build_registry(), budget=two_pools)
    assert job.memory_left["decode"] == 5 * MIB  # the device's budget; no weights known here


def test_a_small_budget_runs_vae_decode_tiled_and_says_so(engine: Engine, vae: Vae) -> None:
    workflow = load_example("txt2img.json")
    engine.budget = CostBudget(200 * MIB, None, 100_000, compute_bytes=4)
    assert engine.validate(workflow) == []  # refused before VAE Decode could tile
    result = engine.run(workflow, targets=["sampler", "decode"])
    assert result.reports["decode"] == {
        "tiled": [
            {
                "tile_size": 128,
                "overlap": 32,
                "reason": "a full decode of 256x256 would not fit the memory budget "
                "(189.0 MiB left for it)",
            }
        ]
    }
    latent = result.outputs["sampler"]["latent"]
    expected = decode_tiled(vae, latent.samples, tile_size=128, overlap=32, family=latent.family)
    assert torch.equal(result.outputs["decode"]["image"], expected)
    engine.budget = CostBudget(2**40, None, 100_000, compute_bytes=4)
    roomy = engine.run(workflow.with_input("sampler", "seed", 7), targets=["decode"])
    assert "decode" not in roomy.reports
