"""store_upload with real image bytes, hostile files and real folders."""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from latentloom.images import read_png_workflow, save_png
from latentloom.server.uploads import UploadRefused, read_limited_async, store_upload

MAX_BYTES = 1_000_000
MAX_PIXELS = 1_000_000


def encoded(image_format: str, size: tuple[int, int] = (32, 24)) -> bytes:
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width` x `height` (with a valid CRC) and that has no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def store(data: bytes | io.BytesIO, name: str, folder: Path) -> str:
    return store_upload(data, name, folder, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)


def refusal(data: bytes | io.BytesIO, name: str, folder: Path) -> UploadRefused:
    with pytest.raises(UploadRefused) as refused:
        store(data, name, folder)
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing, not even a temp file
    return refused.value


@pytest.mark.parametrize(
    ("image_format", "name"),
    [("PNG", "a.png"), ("JPEG", "b.jpg"), ("JPEG", "c.JPEG"), ("WEBP", "d.webp")],
)
def test_images_are_stored_byte_for_byte(tmp_path: Path, image_format: str, name: str) -> None:
    data = encoded(image_format)
    assert store(data, name, tmp_path / "input") == name
    assert (tmp_path / "input" / name).read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == [name]


def test_a_png_keeps_its_workflow(tmp_path: Path) -> None:
    source = tmp_path / "made.png"
    save_png(Image.new("RGB", (8, 8)), source, {"schema": "latentloom/workflow"})
    stored = store(io.BytesIO(source.read_bytes()), "made.png", tmp_path / "input")
    assert read_png_workflow(tmp_path / "input" / stored) == {"schema": "latentloom/workflow"}


def test_taken_names_get_a_counter(tmp_path: Path) -> None:
    names = [store(encoded("PNG"), "cat.png", tmp_path) for _ in range(3)]
    assert names == ["cat.png", "cat (1).png", "cat (2).png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_oversized_upload_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    stream = io.BytesIO(encoded("PNG") + b"\0" * (10 * MAX_BYTES))
    error = refusal(stream, "big.png", tmp_path / "input")
    assert (error.status, str(error)) == (
        413,
        "the upload is larger than the limit of 1,000,000 bytes",
    )
    assert stream.tell() == MAX_BYTES + 1
    error = refusal(b"\0" * (MAX_BYTES + 1), "big.png", tmp_path / "input")
    assert error.status == 413


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    error = refusal(png_header_only(100_000, 100_000), "bomb.png", tmp_path)
    assert error.status == 422
    assert str(error) == (
        f"the image header claims more than {Image.MAX_IMAGE_PIXELS:,} pixels "
        "(a decompression bomb?); it was not decoded"
    )


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path: Path) -> None:
    error = refusal(png_header_only(2000, 1000), "wide.png", tmp_path)
    assert (error.status, str(error)) == (
        422,
        "the image is 2000x1000 = 2,000,000 pixels; the limit is 1,000,000",
    )


@pytest.mark.parametrize(
    ("content", "name", "status", "message"),
    [
        (
            b"<!doctype html><script>alert(1)</script>",
            "page.png",
            415,
            "only PNG, JPEG and WebP images are accepted; this is an HTML document",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "vector.png",
            415,
            "only PNG, JPEG and WebP images are accepted; this is an SVG/XML document",
        ),
        (
            b"GIF89a" + b"\0" * 20,
            "anim.png",
            415,
            "only PNG, JPEG and WebP images are accepted; this is a GIF image",
        ),
        (
            b"\0\0\0\0 random bytes",
            "noise.webp",
            415,
            "only PNG, JPEG and WebP images are accepted; this is not a recognised image",
        ),
    ],
)
def test_non_images_are_refused(
    tmp_path: Path, content: bytes, name: str, status: int, message: str
) -> None:
    error = refusal(content, name, tmp_path)
    assert (error.status, str(error)) == (status, message)


def test_a_zip_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    error = refusal(buffer.getvalue(), "archive.png", tmp_path)
    assert (error.status, str(error)) == (
        415,
        "only PNG, JPEG and WebP images are accepted; this is a ZIP archive",
    )


@pytest.mark.parametrize("name", ["vector.svg", "page.html", "archive.zip", "noext"])
def test_other_suffixes_are_refused(tmp_path: Path, name: str) -> None:
    error = refusal(encoded("PNG"), name, tmp_path)
    assert error.status == 415
    suffix = repr(Path(name).suffix or "no suffix")
    assert str(error) == (
        "only PNG, JPEG and WebP images are accepted, named .png, .jpg, .jpeg or .webp; "
        f"{name!r} ends in {suffix}"
    )


def test_content_must_match_the_suffix(tmp_path: Path) -> None:
    error = refusal(encoded("PNG"), "photo.jpg", tmp_path)
    assert (error.status, str(error)) == (
        415,
        "the name ends in .jpg but the content is a PNG image; rename it to end in .png",
    )


@pytest.mark.parametrize(
    ("image_format", "name"), [("PNG", "cut.png"), ("JPEG", "cut.jpg"), ("WEBP", "cut.webp")]
)
def test_truncated_images_are_refused(tmp_path: Path, image_format: str, name: str) -> None:
    data = encoded(image_format, (64, 64))
    error = refusal(data[: len(data) // 2], name, tmp_path)
    assert error.status == 422
    assert str(error).startswith(f"the {image_format} file is corrupt or truncated: ")


def test_a_png_with_a_bad_checksum_is_refused(tmp_path: Path) -> None:
    data = bytearray(encoded("PNG"))
    data[-20] ^= 0xFF  # inside the last IDAT chunk's data
    assert refusal(bytes(data), "bad.png", tmp_path).status == 422


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.png", "a file name may not contain '/' or '\\'; pick a name without folders"),
        (".hidden.png", "a file name may not start with '.'"),
        ("a\x00.png", "it contains a NUL byte"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    error = refusal(encoded("PNG"), name, tmp_path)
    assert (error.status, str(error)) == (400, f"bad file name {name!r}: {reason}")


def test_request_streams_stop_at_the_limit() -> None:
    pulled: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(100):
            pulled.append(index)
            yield b"\0" * 1000

    with pytest.raises(UploadRefused) as refused:
        asyncio.run(read_limited_async(chunks(), 2500))
    assert (refused.value.status, len(pulled)) == (413, 3)
    assert asyncio.run(read_limited_async(chunks(), 100_000)) == b"\0" * 100_000
