"""Weights converted ahead of a load (models/weight_prefetch.py): the load takes them and gives
the same modules as a plain load; other files, replaced files and unclaimed work hold nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from latentloom.models import weight_prefetch
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.models.tiny_parts import make_example_parts


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    weight_prefetch.stop_all()


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prefetch") / "tiny-sd15.safetensors"
    return make_tiny_checkpoint("sd15", path, seed=3)  # stored in float16


def state(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path, device="cpu", dtype=torch.float32)
    modules = {
        "unet": checkpoint.model.unet,
        "vae": checkpoint.vae.module,
        "clip": checkpoint.clip.encoders[0].model,
    }
    return {f"{n}.{k}": v for n, m in modules.items() for k, v in m.state_dict().items()}


def assert_same(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert torch.equal(left[key], right[key]), key


def convertible(path: Path) -> list[str]:
    with SafetensorsFile(path) as file:
        return weight_prefetch.convertible_keys(file, torch.float32)


def test_a_load_after_the_conversion_takes_every_tensor_and_equals_a_plain_load(
    sd15: Path,
) -> None:
    plain = state(sd15)
    prefetch = weight_prefetch.start(sd15, torch.float32)
    assert prefetch is not None and prefetch.wait_converted(60)
    assert prefetch.held_bytes() > 0
    assert_same(state(sd15), plain)
    assert prefetch.handed == len(convertible(sd15)) > 0
    assert prefetch.held_bytes() == 0


def test_a_load_racing_the_conversion_shares_it_and_equals_a_plain_load(sd15: Path) -> None:
    plain = state(sd15)
    for _ in range(3):  # the load meets the thread at a different tensor each time
        prefetch = weight_prefetch.start(sd15, torch.float32)
        assert prefetch is not None
        assert_same(state(sd15), plain)
        assert prefetch.wait_converted(60)
        assert prefetch.held_bytes() == 0


def test_a_load_in_another_dtype_converts_itself(sd15: Path) -> None:
    prefetch = weight_prefetch.start(sd15, torch.bfloat16)
    assert prefetch is not None and prefetch.wait_converted(60)
    loaded = state(sd15)
    assert all(tensor.dtype != torch.bfloat16 for tensor in loaded.values())
    assert prefetch.handed == 0 and prefetch.held_bytes() == 0


def test_loading_another_file_ends_the_prefetch_and_frees_its_tensors(
    sd15: Path, tmp_path: Path
) -> None:
    other = make_tiny_checkpoint("sd15", tmp_path / "other.safetensors", seed=4)
    prefetch = weight_prefetch.start(sd15, torch.float32)
    assert prefetch is not None and prefetch.wait_converted(60)
    state(other)
    assert prefetch.held_bytes() == 0 and prefetch.handed == 0


def test_a_file_replaced_after_the_prefetch_began_is_read_from_disk(tmp_path: Path) -> None:
    path = make_tiny_checkpoint("sd15", tmp_path / "model.safetensors", seed=5)
    replacement = make_tiny_checkpoint("sd15", tmp_path / "new.safetensors", seed=6)
    expected = state(replacement)
    prefetch = weight_prefetch.start(path, torch.float32)
    assert prefetch is not None and prefetch.wait_converted(60)
    os.replace(replacement, path)  # as our writers replace files: a new inode
    assert_same(state(path), expected)
    assert prefetch.handed == 0


def test_work_no_load_claims_is_dropped(sd15: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weight_prefetch, "UNCLAIMED_SECONDS", 0.1)
    prefetch = weight_prefetch.start(sd15, torch.float32)
    assert prefetch is not None and prefetch.wait_converted(60)
    deadline = time.monotonic() + 10
    while prefetch.held_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert prefetch.held_bytes() == 0


def test_stop_all_frees_what_was_converted(sd15: Path) -> None:
    prefetch = weight_prefetch.start(sd15, torch.float32)
    assert prefetch is not None and prefetch.wait_converted(60)
    weight_prefetch.stop_all()
    assert prefetch.held_bytes() == 0


def test_only_the_tensors_the_checkpoint_loader_reads_are_converted(tmp_path: Path) -> None:
    sdxl = make_tiny_checkpoint("sdxl", tmp_path / "sdxl.safetensors", seed=0)
    sd3 = make_tiny_checkpoint("sd3", tmp_path / "sd3.safetensors", seed=0)
    make_example_parts(tmp_path)  # a standalone VAE file, an embedding
    keys = convertible(sdxl)
    with SafetensorsFile(sdxl) as file:
        loaded = [k for k in file if k.startswith(weight_prefetch.LOADED_PREFIXES)]
        assert sorted(keys) == sorted(k for k in loaded if file.dtype(k).is_floating_point)
    assert convertible(sd3) == []  # its loader reads another layout
    for vae in (tmp_path / "vae").glob("*.safetensors"):
        assert convertible(vae) == []
    with SafetensorsFile(sdxl) as file:
        assert weight_prefetch.convertible_keys(file, torch.float16) == []  # stored so already
    assert weight_prefetch.start(tmp_path / "missing.safetensors", torch.float32) is None
    assert weight_prefetch.start(sd3, torch.float32) is None
    assert weight_prefetch.start(tmp_path / "no", torch.float32) is None
    assert weight_prefetch.start(sdxl, torch.float32) is not None


def test_stop_all_ends_every_conversion_claimed_or_not(sd15: Path, tmp_path: Path) -> None:
    other = make_tiny_checkpoint("sd15", tmp_path / "other.safetensors", seed=7)
    first = weight_prefetch.start(sd15, torch.float32)
    second = weight_prefetch.start(other, torch.float32)
    assert first is not None and second is not None
    weight_prefetch.stop_all()
    for prefetch in (first, second):
        assert prefetch.wait_converted(0) and prefetch.held_bytes() == 0
    # Nothing stopped is kept to be found again: asking anew starts a new conversion.
    assert weight_prefetch.start(sd15, torch.float32) not in (None, first)
