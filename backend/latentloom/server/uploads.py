"""Storing uploaded input images: only real, bounded PNG, JPEG and WebP files reach the disk.

Checks, cheapest first, each refusing with the HTTP status a route should answer:
the file name (`safe_name`, 400; a suffix other than .png/.jpg/.jpeg/.webp, 415); the size,
counted while reading so a huge body is never read whole (413); the magic bytes (415, and the
suffix must name the same format); the dimensions from the header, before any pixel is
decoded, against `max_pixels` and Pillow's own decompression-bomb limit
(`Image.MAX_IMAGE_PIXELS`, left as it is; its warning counts as a refusal), so the effective
limit is the smaller of the two (422); then `Image.verify()` and a full decode, because
verify checks PNG chunk checksums but passes a truncated JPEG or WebP (422).

The original bytes are stored, not a re-encoding, so a PNG keeps the workflow it carries. The
file appears atomically: it is written and fsynced under a temporary name in the same folder
and hard-linked to its final name, which fails rather than overwrites when the name is taken
(by anything: a symlink planted under the name is never followed); a taken name becomes
"name (1).png", "name (2).png", ...
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image

from latentloom.server.paths import PathRefused, safe_name

# format -> the suffixes that name it (the first is the one to suggest)
SUFFIXES: Final = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",)}
ALLOWED_SUFFIXES: Final = frozenset(suffix for names in SUFFIXES.values() for suffix in names)
CHUNK_BYTES = 64 * 1024
ACCEPTED = "PNG, JPEG and WebP images"


class UploadRefused(ValueError):
    """An upload that was not stored; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def sniff_format(head: bytes) -> str | None:
    """'PNG', 'JPEG' or 'WEBP' from the first bytes of a file, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe(head: bytes) -> str:
    """A guess at what a refused file is, for the message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml")) or b"<svg" in text[:512]:
        return "an SVG/XML document"
    if text.startswith(b"<"):
        return "an HTML document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    return "not a recognised image"


def read_limited(data: bytes | BinaryIO, max_bytes: int) -> bytes:
    """All of `data`, or UploadRefused(413) as soon as it passes `max_bytes`."""
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        return data
    parts, total = [], 0
    while chunk := data.read(min(CHUNK_BYTES, max_bytes + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
    return b"".join(parts)


async def read_limited_async(chunks: AsyncIterable[bytes], max_bytes: int) -> bytes:
    """`read_limited` for a request stream (`request.stream()`), stopping at the limit."""
    parts, total = [], 0
    async for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
    return b"".join(parts)


def _too_large(max_bytes: int) -> UploadRefused:
    return UploadRefused(413, f"the upload is larger than the limit of {max_bytes:,} bytes")


def check_image(content: bytes, suffix: str, *, max_pixels: int) -> str:
    """The format of an acceptable image, or UploadRefused saying why it is not one."""
    image_format = sniff_format(content[:16])
    if image_format is None:
        raise UploadRefused(415, f"only {ACCEPTED} are accepted; this is {_describe(content)}")
    if suffix not in SUFFIXES[image_format]:
        raise UploadRefused(
            415,
            f"the name ends in {suffix} but the content is a {image_format} image; "
            f"rename it to end in {SUFFIXES[image_format][0]}",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(content), formats=[image_format]) as image:
                width, height = image.size  # from the header; no pixels decoded yet
                if width * height > max_pixels:
                    raise UploadRefused(
                        422,
                        f"the image is {width}x{height} = {width * height:,} pixels; "
                        f"the limit is {max_pixels:,}",
                    )
                image.verify()
            with Image.open(io.BytesIO(content), formats=[image_format]) as image:
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRefused(
                422,
                f"the image header claims more than {Image.MAX_IMAGE_PIXELS:,} pixels "
                "(a decompression bomb?); it was not decoded",
            ) from None
        except UploadRefused:
            raise
        except Exception as error:  # Pillow raises many types for broken files
            raise UploadRefused(
                422, f"the {image_format} file is corrupt or truncated: {error}"
            ) from None
    return image_format


def store_upload(
    data: bytes | BinaryIO,
    filename: str,
    input_dir: Path,
    *,
    max_bytes: int,
    max_pixels: int,
) -> str:
    """Check an uploaded image and store it in `input_dir`; returns the name it was stored as."""
    try:
        name = safe_name(filename)
    except PathRefused as error:
        raise UploadRefused(400, f"bad file name {filename!r}: {error.reason}") from None
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise UploadRefused(
            415,
            f"only {ACCEPTED} are accepted, named .png, .jpg, .jpeg or .webp; "
            f"{filename!r} ends in {suffix or 'no suffix'!r}",
        )
    content = read_limited(data, max_bytes)
    check_image(content, suffix, max_pixels=max_pixels)
    input_dir.mkdir(parents=True, exist_ok=True)
    return _write_new(input_dir, name, content)


def _write_new(folder: Path, name: str, content: bytes) -> str:
    """Write `content` under `name` or the first free "stem (n)suffix"; never overwrites."""
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        stem, suffix = Path(name).stem, Path(name).suffix
        for counter in range(10_000):
            candidate = name if counter == 0 else f"{stem} ({counter}){suffix}"
            try:
                # link() never follows a link at the new name: any existing entry, a planted
                # symlink included, is just a taken name
                os.link(temporary, folder / candidate)
            except FileExistsError:
                continue
            return candidate
        raise UploadRefused(409, f"no free name like {name!r} after 10000 tries; rename the file")
    finally:
        os.unlink(temporary)
