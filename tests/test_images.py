"""Saving images: loop counts as browsers read them, names reserved, planted symlinks ignored."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch
from PIL import Image

from latentloom.images import next_free_path, save_animation, to_pil, write_png
from latentloom.latent_file import read_latent_file, write_latent_file
from latentloom.safe_write import WriteRefused


def frames() -> list[Image.Image]:
    return to_pil(torch.linspace(0, 1, 3).view(3, 1, 1, 1).expand(3, 8, 8, 3).contiguous())


def gif_loop_count(path: Path) -> int | None:
    """The NETSCAPE2.0 repeat count of a GIF, or None when it has no such block (plays once)."""
    data = path.read_bytes()
    at = data.find(b"\x21\xff\x0bNETSCAPE2.0")
    if at < 0:
        return None
    sub_block = data[at + 14 : at + 18]  # size 3, id 1, little-endian u16 count
    assert sub_block[:2] == b"\x03\x01", sub_block
    return int(struct.unpack("<H", sub_block[2:])[0])


def webp_loop_count(path: Path) -> int:
    """The ANIM chunk's loop count of an animated WebP (how many times it plays, 0: forever)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    offset = 12
    while offset < len(data):
        kind, size = (
            data[offset : offset + 4],
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        if kind == b"ANIM":
            return int(struct.unpack("<H", data[offset + 12 : offset + 14])[0])
        offset += 8 + size + (size & 1)
    raise AssertionError("no ANIM chunk: not an animated WebP")


def test_a_gif_that_does_not_loop_has_no_repeat_block(tmp_path: Path) -> None:
    once, forever = tmp_path / "once.gif", tmp_path / "forever.gif"
    save_animation(frames(), once, fps=8, format="gif", loop=False)
    save_animation(frames(), forever, fps=8, format="gif", loop=True)
    # a repeat count of 1 would make browsers play it twice; no block means play once
    assert gif_loop_count(once) is None
    assert gif_loop_count(forever) == 0
    with Image.open(once) as image:
        assert "loop" not in image.info and getattr(image, "n_frames", 1) == 3


def test_a_webp_that_does_not_loop_plays_once(tmp_path: Path) -> None:
    once, forever = tmp_path / "once.webp", tmp_path / "forever.webp"
    save_animation(frames(), once, fps=8, format="webp", loop=False)
    save_animation(frames(), forever, fps=8, format="webp", loop=True)
    assert webp_loop_count(once) == 1
    assert webp_loop_count(forever) == 0


def test_a_loop_count_on_the_first_frame_is_not_carried_over(tmp_path: Path) -> None:
    looping = tmp_path / "looping.gif"
    save_animation(frames(), looping, fps=8, format="gif", loop=True)
    with Image.open(looping) as opened:
        assert opened.info["loop"] == 0
        first = opened.convert("RGB")
    first.info["loop"] = 0  # as a frame read back from a looping GIF carries it
    once = tmp_path / "once.gif"
    save_animation([first, *frames()], once, fps=8, format="gif", loop=False)
    assert gif_loop_count(once) is None


def test_names_are_reserved_in_order_and_never_reused(tmp_path: Path) -> None:
    first = next_free_path(tmp_path / "out", "shot", ".png")
    second = next_free_path(tmp_path / "out", "shot", ".png")
    assert (first.name, second.name) == ("shot_00001.png", "shot_00002.png")
    assert first.is_file() and first.stat().st_size == 0  # reserved until written
    write_png(frames()[0], first, [("k", "v")])
    with Image.open(first) as written:
        assert written.info["k"] == "v"
    assert next_free_path(tmp_path / "out", "../../shot", ".png").name == "______shot_00001.png"


def test_a_planted_symlink_under_the_next_name_is_skipped(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside.txt"
    out.mkdir()
    outside.write_text("keep me")
    (out / "shot_00001.png").symlink_to(tmp_path / "missing.png")  # dangling: glob skips it
    path = next_free_path(out, "shot", ".png")
    assert path.name == "shot_00002.png" and not path.is_symlink()
    write_png(frames()[0], path, [])
    assert not (tmp_path / "missing.png").exists() and outside.read_text() == "keep me"


def test_writing_over_a_symlink_replaces_the_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    for name, write in [
        ("a.png", lambda path: write_png(frames()[0], path, [])),
        ("a.gif", lambda path: save_animation(frames(), path, fps=4, format="gif", loop=True)),
        ("a.latent", lambda path: write_latent_file(path, torch.zeros(1, 4, 2, 2), None)),
    ]:
        link = tmp_path / name
        link.symlink_to(outside)
        write(link)
        assert not link.is_symlink() and link.stat().st_size > 0
    assert outside.read_text() == "keep me"
    assert read_latent_file(tmp_path / "a.latent").samples.shape == (1, 4, 2, 2)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_a_symlinked_output_subfolder_is_refused_naming_it(tmp_path: Path) -> None:
    output, elsewhere = tmp_path / "output", tmp_path / "elsewhere"
    output.mkdir()
    elsewhere.mkdir()
    (output / "previews").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteRefused) as refused:
        next_free_path(output / "previews", "preview", ".png")
    assert str(refused.value) == (
        f"refused to write in {output / 'previews'}: it is a symlink (to {elsewhere}); files "
        "are written only into real folders, so remove the link or replace it with a folder"
    )
    with pytest.raises(WriteRefused, match="it is a symlink"):
        write_png(frames()[0], output / "previews" / "direct.png", [])
    with pytest.raises(WriteRefused, match="it is a symlink"):
        write_latent_file(output / "previews" / "x.latent", torch.zeros(1, 4, 2, 2), None)
    assert list(elsewhere.iterdir()) == []


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "latents").write_text("not a folder")
    with pytest.raises(WriteRefused) as refused:
        next_free_path(tmp_path / "latents", "latent", ".latent")
    assert refused.value.reason == "it is not a folder; move that file away"
