"""Model folders on real disks: linked libraries are usable, loops end, listings are cached."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from latentloom.models.folder_listing import MAX_DEPTH
from latentloom.models.folders import ModelFolders, ModelNotFoundError
from latentloom.models.load import load_checkpoint

LISTING_TIMEOUT_S = 30.0  # a hang is what these tests catch; a listing takes milliseconds


def within_timeout(call: Callable[[], list[str]]) -> list[str]:
    """`call()` on a thread; fails the test instead of hanging it when the call never returns."""
    result: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LISTING_TIMEOUT_S)
    assert not thread.is_alive(), f"listing did not finish within {LISTING_TIMEOUT_S} s"
    if errors:
        raise errors[0]
    return result[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    (tmp_path / "models" / "loras").mkdir()
    (tmp_path / "models" / "checkpoints" / "own.safetensors").write_bytes(b"x")
    return tmp_path / "models"


@pytest.fixture
def library(tmp_path: Path, models_dir: Path) -> Path:
    """Another disk's model library: a real tiny checkpoint and a folder of them."""
    other = tmp_path / "other-disk"
    (other / "sd" / "nested").mkdir(parents=True)
    (other / "sd" / "nested" / "tiny.safetensors").symlink_to(
        models_dir / "checkpoints" / "tiny-sd15.safetensors"
    )
    (other / "single.safetensors").symlink_to(models_dir / "checkpoints" / "tiny-sd15.safetensors")
    return other


def test_symlinked_files_and_folders_from_another_disk_are_listed_and_load(
    root: Path, library: Path
) -> None:
    checkpoints = root / "checkpoints"
    (checkpoints / "linked.safetensors").symlink_to(library / "single.safetensors")
    (checkpoints / "library").symlink_to(library / "sd", target_is_directory=True)
    folders = ModelFolders.of([root])
    assert folders.list("checkpoints") == [
        "library/nested/tiny.safetensors",
        "linked.safetensors",
        "own.safetensors",
    ]
    for name in ("linked.safetensors", "library/nested/tiny.safetensors"):
        path = folders.resolve("checkpoints", name)
        assert path == checkpoints / name  # as listed: the link is followed when opened
        loaded = load_checkpoint(path, device="cpu", dtype=torch.float32)
        assert loaded.model.family.name == "sd15"


def test_symlink_loops_are_listed_without_hanging(root: Path, tmp_path: Path) -> None:
    checkpoints = root / "checkpoints"
    (checkpoints / "a.safetensors").symlink_to(checkpoints / "b.safetensors")
    (checkpoints / "b.safetensors").symlink_to(checkpoints / "a.safetensors")
    (checkpoints / "self.safetensors").symlink_to(checkpoints / "self.safetensors")
    (checkpoints / "sub").mkdir()
    (checkpoints / "sub" / "up").symlink_to(checkpoints, target_is_directory=True)
    (checkpoints / "sub" / "root").symlink_to(root, target_is_directory=True)
    (checkpoints / "sub" / "x.safetensors").write_bytes(b"x")
    (checkpoints / "loop-dir").symlink_to(checkpoints / "loop-dir")
    folders = ModelFolders.of([root, checkpoints / "sub" / "root"])
    names = within_timeout(lambda: folders.list("checkpoints"))
    assert names == ["own.safetensors", "sub/x.safetensors"]
    for looping in ("a.safetensors", "self.safetensors", "sub/up/own.safetensors"):
        with pytest.raises(ModelNotFoundError) as refused:
            folders.resolve("checkpoints", looping)
        assert str(refused.value) == (
            f"checkpoints file {looping!r} not found; available: own.safetensors, sub/x.safetensors"
        )


def test_a_root_that_is_itself_a_loop_lists_nothing(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert within_timeout(lambda: ModelFolders.of([tmp_path / "loop"]).list("loras")) == []


def test_deep_nesting_stops_at_the_depth_bound(root: Path) -> None:
    deep = root / "loras"
    for level in range(MAX_DEPTH + 3):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "too-deep.safetensors").write_bytes(b"x")
    (root / "loras" / "d0" / "shallow.safetensors").write_bytes(b"x")
    assert ModelFolders.of([root]).list("loras") == ["d0/shallow.safetensors"]


@pytest.mark.parametrize(
    "name",
    [
        "../checkpoints/own.safetensors",
        "/etc/passwd",
        "sub\\own.safetensors",
        "./own.safetensors",
        "own.safetensors/",
        ".hidden.safetensors",
    ],
)
def test_names_that_are_not_in_the_listing_are_refused(root: Path, name: str) -> None:
    (root / "checkpoints" / ".hidden.safetensors").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError) as refused:
        ModelFolders.of([root]).resolve("checkpoints", name)
    assert str(refused.value) == (
        f"checkpoints file {name!r} not found; available: own.safetensors"
    )


def test_listings_are_cached_until_a_folder_changes(root: Path) -> None:
    checkpoints = root / "checkpoints"
    past = (1_600_000_000, 1_600_000_000)  # an mtime long settled
    os.utime(root, past)
    os.utime(checkpoints, past)
    folders = ModelFolders.of([root])
    folders.refresh()
    assert folders.list("checkpoints") == ["own.safetensors"]
    # A file appears but the folder's mtime is put back: only a cached listing misses it.
    (checkpoints / "new.safetensors").write_bytes(b"x")
    os.utime(checkpoints, past)
    assert folders.list("checkpoints") == ["own.safetensors"]
    os.utime(checkpoints)  # what creating the file did to the folder: the listing refreshes
    assert folders.list("checkpoints") == ["new.safetensors", "own.safetensors"]
    os.utime(checkpoints, past)
    (checkpoints / "new.safetensors").unlink()
    os.utime(checkpoints, past)
    folders.refresh()  # the explicit way
    assert folders.list("checkpoints") == ["own.safetensors"]


def test_a_new_subfolder_of_the_root_is_noticed(root: Path) -> None:
    folders = ModelFolders.of([root])
    assert folders.list("vae") == []
    (root / "VAE").mkdir()
    (root / "VAE" / "kl.safetensors").write_bytes(b"x")
    assert folders.list("vae") == ["kl.safetensors"]
