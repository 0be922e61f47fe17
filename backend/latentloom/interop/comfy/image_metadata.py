"""The workflow an image carries: PNG text chunks and animated WebP EXIF, read with Pillow.

ComfyUI writes its API prompt as PNG text `prompt` and each `extra_pnginfo` key (normally
`workflow`, the editor graph) as one more text chunk; in animated WebP it puts them in EXIF
as `"prompt:{...}"` under tag 0x0110 and `"<key>:{...}"` under 0x010F, 0x010E, ... We save
a third chunk, `latentloom`, with our own document; older Latentloom PNGs kept ours in
`workflow`. Reading prefers ours, then the editor graph (it has positions), then the prompt;
a document is recognised by content, whatever its keyword.

Pillow reads the text chunks placed before the pixels without decoding them; only when none
is found do we decode the whole file to reach chunks written after the pixels. When Pillow
refuses a PNG, a walk over its chunk structure names the chunk where the file breaks.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

from PIL import Image, UnidentifiedImageError

from latentloom.interop.comfy.report import ComfyFormatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREFERENCE = ("latentloom", "workflow", "prompt")
EXIF_PROMPT = 0x0110
EXIF_FIRST_EXTRA = 0x010F  # then counting down, one tag per extra key


def embedded_document(data: bytes, filename: str = "") -> tuple[Any, str]:
    """The preferred JSON document an image carries, and where it was found."""
    if data.startswith(PNG_SIGNATURE):
        texts = {
            key: (text, f"png text chunk {key!r}")
            for key, text in _png_texts(data, filename).items()
        }
    else:
        texts = _webp_texts(data, filename)
    if not texts:
        name = filename or "the image"
        raise ComfyFormatError(
            "", f"{name} carries no workflow (no 'prompt', 'workflow' or 'latentloom' metadata)"
        )
    documents = {key: _parse(text, where) for key, (text, where) in texts.items()}
    ours = [key for key, doc in documents.items() if _is_ours(doc)]
    key = next(key for key in [*ours, *PREFERENCE] if key in documents)
    return documents[key], texts[key][1]


def _is_ours(document: Any) -> bool:
    return isinstance(document, dict) and document.get("schema") == "latentloom/workflow"


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ComfyFormatError(
            where, f"is not valid JSON: {error.msg} (line {error.lineno} column {error.colno})"
        ) from None


def _png_texts(data: bytes, filename: str) -> dict[str, str]:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            texts = _wanted(image.info)
            if not texts:  # chunks after the pixels: only a full read reaches them
                texts = _wanted(getattr(image, "text", {}))
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as error:
        raise ComfyFormatError(*_png_problem(data, filename, error)) from None
    return texts


def _wanted(info: Any) -> dict[str, str]:
    return {
        str(key): str(value)
        for key, value in dict(info).items()
        if key in PREFERENCE and isinstance(value, str)
    }


def _png_problem(data: bytes, filename: str, error: Exception) -> tuple[str, str]:
    """Where a PNG Pillow refused breaks: (where, what), from a walk over its chunks."""
    name = filename or "the PNG"
    offset, index = len(PNG_SIGNATURE), 0
    while offset < len(data):
        header = data[offset : offset + 8]
        if len(header) < 8:
            return (
                f"{name} chunk {index} at byte {offset}",
                "the file ends inside a chunk header (truncated)",
            )
        length, kind = struct.unpack(">I4s", header)
        label = kind.decode("latin-1")
        end = offset + 12 + length
        if end > len(data):
            return (
                f"{name} chunk {index} ({label}) at byte {offset}",
                f"the file ends {end - len(data)} byte(s) before this chunk does (truncated)",
            )
        if zlib.crc32(data[offset + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            return (
                f"{name} chunk {index} ({label}) at byte {offset}",
                "its checksum is wrong (corrupted)",
            )
        if label == "IEND":
            break
        offset, index = end, index + 1
    else:
        return (
            f"{name} chunk {index} at byte {offset}",
            "the file ends before the IEND chunk (truncated)",
        )
    return name, f"Pillow cannot read it: {error}"


def _webp_texts(data: bytes, filename: str) -> dict[str, tuple[str, str]]:
    """(text, where) by key from an (animated) WebP's EXIF tags."""
    name = filename or "the WebP"
    declared = struct.unpack("<I", data[4:8])[0] + 8 if len(data) >= 12 else 0
    if len(data) < declared:
        raise ComfyFormatError(
            f"{name} RIFF container",
            f"declares {declared} bytes but the file has {len(data)} (truncated)",
        )
    try:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as image:
            exif = image.getexif()
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, struct.error) as error:
        raise ComfyFormatError(f"{name} EXIF", f"Pillow cannot read it: {error}") from None
    texts: dict[str, tuple[str, str]] = {}
    for tag in (EXIF_PROMPT, *range(EXIF_FIRST_EXTRA, EXIF_FIRST_EXTRA - 16, -1)):
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and ":" in value:
            key, _colon, text = value.partition(":")
            if key in PREFERENCE:
                texts.setdefault(key, (text, f"webp EXIF 0x{tag:04X} {key!r}"))
    return texts
