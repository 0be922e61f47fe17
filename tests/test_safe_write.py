"""Writes that planted links cannot redirect, and the start-up sweep of what a crash left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from latentloom.safe_write import WriteRefused, atomic_write, reserve_new, sweep_temp_files

LONG_AGO = time.time() - 3600


def make(path: Path, content: bytes = b"x", *, old: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if old:
        os.utime(path, (LONG_AGO, LONG_AGO))
    return path


def test_the_sweep_removes_what_interrupted_writes_left(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "outside"
    output = data / "output"
    stale = [
        make(data / "workflows" / ".k2j3h4.tmp"),  # the workflow store's
        make(data / "input" / ".upload-9x8y.partial"),  # an upload's
        make(output / "previews" / ".preview_00003.png.0a1b2c3d4e5f.partial"),  # ours
        make(output / "latents" / "latent_00001.latent.partial"),  # an older writer's
        make(output / "latentloom_00007.png", b""),  # reserved, never written
    ]
    kept = [
        make(data / "ledger.sqlite3-journal"),
        make(data / "workflows" / "notes.tmp"),
        make(data / "input" / "empty.png", b""),  # inputs are the user's
        make(output / "latentloom_00006.png"),
        make(output / ".young.partial", old=False),  # maybe being written right now
        make(outside / ".theirs.partial"),
        make(outside / "empty.png", b""),
    ]
    (output / "linked").symlink_to(outside, target_is_directory=True)
    link = output / ".link.partial"
    link.symlink_to(outside / "empty.png")
    os.utime(link, (LONG_AGO, LONG_AGO), follow_symlinks=False)
    removed = sweep_temp_files(data, output)
    assert sorted(removed) == sorted([*stale, link])
    assert not any(path.exists() for path in stale) and not link.is_symlink()
    assert all(path.exists() for path in kept)


def test_the_sweep_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert sweep_temp_files(tmp_path / "none", tmp_path / "none" / "output") == []


def test_atomic_write_leaves_nothing_behind_when_the_writer_fails(tmp_path: Path) -> None:
    target = make(tmp_path / "kept.json", b"old")

    def failing(file: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept.json"]


def test_reserving_skips_taken_names_and_links(tmp_path: Path) -> None:
    make(tmp_path / "a")
    (tmp_path / "b").symlink_to(tmp_path / "nowhere")
    assert reserve_new(tmp_path, ["a", "b", "c"]) == tmp_path / "c"
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(WriteRefused) as refused:
        reserve_new(tmp_path, ["a", "b", "c"])
    assert str(refused.value) == f"refused to write in {tmp_path}: no free file name after 3 tries"
