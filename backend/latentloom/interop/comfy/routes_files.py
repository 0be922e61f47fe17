"""ComfyUI's file routes: `GET /view`, `POST /upload/image`, `POST /upload/mask`.

ComfyUI names a file by `filename`, `subfolder` and a folder `type`: output, input or temp
(our Preview Image folder, `jobs_view.folder_root`). Every path goes through the same guards
as our own file routes: `confined` keeps it inside its folder (400 otherwise), only image
types are served, with the same no-sniff and sandbox headers, and uploads pass the same size,
format and pixel checks (`server/uploads.py`). As in ComfyUI, an upload whose name is taken
gets "name (1).png" unless `overwrite` is true, and re-uploading identical bytes reuses the
existing name. A mask upload copies the uploaded image's alpha channel onto the original it
names (`original_ref`) and stores the result as a PNG.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Final

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, Response
from PIL import Image, PngImagePlugin
from starlette.datastructures import UploadFile

from latentloom.interop.comfy.jobs_view import FOLDER_TYPES, folder_root
from latentloom.server.outputs import MediaRefused, media_type_for, preview_bytes
from latentloom.server.paths import PathRefused, confined, safe_name
from latentloom.server.routes_files import SAFE_HEADERS
from latentloom.server.services import Services
from latentloom.server.settings import ServerSettings
from latentloom.server.uploads import (
    ALLOWED_SUFFIXES,
    UploadRefused,
    check_image,
    read_limited,
    store_upload,
)

PREVIEW_MAX_SIDE: Final = 16384  # `preview=` re-encodes; it does not shrink


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _root(settings: ServerSettings, kind: str) -> Path:
    root = folder_root(kind, settings.output_dir, settings.input_dir)
    if root is None:
        raise HTTPException(
            400, f"unknown folder type {kind!r}; use one of {', '.join(FOLDER_TYPES)}"
        )
    return root


def _locate(settings: ServerSettings, kind: str, subfolder: str, filename: str) -> Path:
    if not filename or "/" in filename or "\\" in filename:
        raise HTTPException(400, f"filename must be a plain file name, got {filename!r}")
    relative = f"{subfolder.rstrip('/')}/{filename}" if subfolder else filename
    try:
        return confined(_root(settings, kind), relative)
    except PathRefused as error:
        raise HTTPException(400, str(error)) from None


async def view(request: Request) -> Response:
    """An output, input or temp image; `preview=webp;90` re-encodes it (ComfyUI's option)."""
    query = request.query_params
    settings = services(request).settings
    filename = query.get("filename", "")
    file = _locate(settings, query.get("type", "output"), query.get("subfolder", ""), filename)
    try:
        media_type = media_type_for(file)
    except MediaRefused as error:
        raise HTTPException(404, str(error)) from None
    if not file.is_file():
        raise HTTPException(404, f"no file {filename!r} there")
    headers = {**SAFE_HEADERS, "Content-Disposition": f'filename="{file.name}"'}
    preview = query.get("preview")
    if preview is None:
        return FileResponse(file, media_type=media_type, headers=headers)
    image_format, _, quality = preview.partition(";")
    image_format = image_format if image_format in ("webp", "jpeg") else "webp"
    data = await asyncio.to_thread(
        preview_bytes,
        file,
        max_size=PREVIEW_MAX_SIDE,
        format=image_format,  # type: ignore[arg-type]
        quality=int(quality) if quality.isdigit() else 90,
    )
    return Response(data, media_type=f"image/{image_format}", headers=SAFE_HEADERS)


def store(
    data: bytes, filename: str, folder: Path, *, overwrite: bool, settings: ServerSettings
) -> str:
    """Check and store an uploaded image in `folder`; the name it was stored under."""
    limits = {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
    try:
        name = safe_name(filename)
    except PathRefused as error:
        raise UploadRefused(400, f"bad file name {filename!r}: {error.reason}") from None
    try:
        existing = confined(folder, name)
    except PathRefused as error:
        raise UploadRefused(400, f"bad file name {filename!r}: {error.reason}") from None
    if not overwrite:
        if existing.is_file() and existing.read_bytes() == data:
            return name  # the same picture again: ComfyUI reuses the name
        return store_upload(data, name, folder, **limits)
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise UploadRefused(415, f"only .png, .jpg, .jpeg or .webp images; {name!r} is not one")
    check_image(
        read_limited(data, settings.max_upload_bytes), suffix, max_pixels=settings.max_image_pixels
    )
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, existing)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return name


async def _upload_form(request: Request) -> tuple[str, bytes, dict[str, str]]:
    """The uploaded file's name and bytes (read up to one byte past the limit), and the fields."""
    limit = services(request).settings.max_upload_bytes
    async with request.form(max_files=1, max_fields=16) as form:
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise HTTPException(400, "the multipart form needs the file in a field named 'image'")
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        return image.filename or "upload.png", await image.read(limit + 1), fields


def _target(settings: ServerSettings, fields: dict[str, str]) -> tuple[Path, str, str]:
    kind = fields.get("type") or "input"
    subfolder = (fields.get("subfolder") or "").rstrip("/")
    root = _root(settings, kind)
    try:
        folder = confined(root, subfolder) if subfolder else root
    except PathRefused as error:
        raise HTTPException(400, str(error)) from None
    return folder, subfolder, kind


async def _finish_upload(
    request: Request, data: bytes, filename: str, fields: dict[str, str]
) -> dict[str, str]:
    settings = services(request).settings
    folder, subfolder, kind = _target(settings, fields)
    overwrite = str(fields.get("overwrite", "")).lower() in ("true", "1")
    try:
        name = await asyncio.to_thread(
            store, data, filename, folder, overwrite=overwrite, settings=settings
        )
    except UploadRefused as error:
        raise HTTPException(error.status, str(error)) from None
    return {"name": name, "subfolder": subfolder, "type": kind}


async def upload_image(request: Request) -> dict[str, str]:
    filename, data, fields = await _upload_form(request)
    return await _finish_upload(request, data, filename, fields)


def with_mask(original: Path, mask_bytes: bytes, *, max_pixels: int) -> bytes:
    """The original image as RGBA PNG bytes with the mask image's alpha channel."""
    check_image(mask_bytes, ".png", max_pixels=max_pixels)
    with Image.open(original) as opened, Image.open(io.BytesIO(mask_bytes)) as mask:
        if opened.size != mask.size:
            raise UploadRefused(
                400,
                f"the mask is {mask.size[0]}x{mask.size[1]} but the image is "
                f"{opened.size[0]}x{opened.size[1]}; they must match",
            )
        info = PngImagePlugin.PngInfo()
        for key, value in getattr(opened, "text", {}).items():
            info.add_text(key, value)
        combined = opened.convert("RGBA")
        combined.putalpha(mask.convert("RGBA").getchannel("A"))
    buffer = io.BytesIO()
    combined.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


async def upload_mask(request: Request) -> dict[str, str]:
    settings = services(request).settings
    filename, data, fields = await _upload_form(request)
    try:
        reference = json.loads(fields.get("original_ref") or "")
    except json.JSONDecodeError:
        reference = None
    if not isinstance(reference, dict) or not isinstance(reference.get("filename"), str):
        raise HTTPException(400, "original_ref must be JSON {filename, subfolder?, type?}")
    original = _locate(
        settings,
        str(reference.get("type") or "input"),
        str(reference.get("subfolder") or ""),
        reference["filename"],
    )
    if not original.is_file() or original.suffix.lower() not in ALLOWED_SUFFIXES:
        raise HTTPException(404, f"no image {reference['filename']!r} to apply the mask to")
    try:
        read_limited(data, settings.max_upload_bytes)
        png = await asyncio.to_thread(
            with_mask, original, data, max_pixels=settings.max_image_pixels
        )
    except UploadRefused as error:
        raise HTTPException(error.status, str(error)) from None
    name = Path(filename).with_suffix(".png").name
    return await _finish_upload(request, png, name, fields)


ROUTES: Final = [
    ("GET", "/view", view),
    ("POST", "/upload/image", upload_image),
    ("POST", "/upload/mask", upload_mask),
]
