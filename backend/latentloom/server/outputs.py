"""Serving output images: confined paths, image-only media types, resized previews.

Only PNG, JPEG, WebP and GIF are ever served, chosen by suffix: anything else (HTML, SVG,
JSON, a workflow) is refused, so no file in the output folder can become active content in
the browser. The route adds `X-Content-Type-Options: nosniff` and a CSP so a file whose
content disagrees with its suffix is still treated as an image.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Final, Literal

from PIL import Image, ImageOps

from latentloom.server.paths import confined

MEDIA_TYPES: Final = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
PREVIEW_FORMATS: Final = {"webp": "WEBP", "jpeg": "JPEG"}


class MediaRefused(ValueError):
    """A file that is not served because it is not one of the image types."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path.name!r} is not served: only .png, .jpg, .jpeg, .webp and .gif images are"
        )


def resolve_output(output_dir: Path, relative: str) -> Path:
    """The real path of `relative` inside `output_dir` (PathRefused if it would leave it).

    Whether the file exists is the caller's check.
    """
    return confined(output_dir, relative)


def media_type_for(path: Path) -> str:
    """The image media type for `path`'s suffix, or MediaRefused."""
    media_type = MEDIA_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise MediaRefused(path)
    return media_type


def preview_bytes(
    path: Path, *, max_size: int, format: Literal["webp", "jpeg"], quality: int = 80
) -> bytes:
    """The image (its first frame) shrunk to at most `max_size` on its long side, encoded.

    Orientation from EXIF is applied; JPEG previews lose transparency (composited on white).
    Pillow's decompression-bomb limit stays in force, its warning counting as an error.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1 pixel, got {max_size}")
    if format not in PREVIEW_FORMATS:
        raise ValueError(f"preview format must be one of {sorted(PREVIEW_FORMATS)}, got {format!r}")
    media_type_for(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            opened.draft("RGB", (max_size, max_size))  # JPEG: decode at a reduced scale
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((max_size, max_size))
    if format == "jpeg":
        image = _flatten(image)
    elif image.mode not in ("RGB", "RGBA"):
        image = image.convert(
            "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
        )
    buffer = io.BytesIO()
    image.save(buffer, format=PREVIEW_FORMATS[format], quality=quality)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white."""
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
