"""Files: output images (and resized previews of them), and uploaded input images."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response

from latentloom.server.outputs import media_type_for, preview_bytes, resolve_output
from latentloom.server.paths import PathRefused
from latentloom.server.services import Services
from latentloom.server.uploads import UploadRefused, store_upload

router = APIRouter(prefix="/api", tags=["files"])
# Served files are data, never active content: no sniffing, no scripts, no embedding elsewhere.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.get("/outputs/{path:path}")
async def output_file(
    request: Request,
    path: str,
    preview: Annotated[
        Literal["webp", "jpeg"] | None, Query(description="a resized preview")
    ] = None,
    max_size: Annotated[int, Query(ge=16, le=4096)] = 512,
) -> Response:
    root = services(request).settings.output_dir
    try:
        file = resolve_output(root, path)
        media_type = media_type_for(file)
    except (PathRefused, ValueError) as error:
        raise HTTPException(404, f"no output {path!r}: {error}") from None
    if not file.is_file():
        raise HTTPException(404, f"no output {path!r}")
    if preview is None:
        return FileResponse(file, media_type=media_type, headers=SAFE_HEADERS)
    data = await asyncio.to_thread(preview_bytes, file, max_size=max_size, format=preview)
    return Response(data, media_type=f"image/{preview}", headers=SAFE_HEADERS)


@router.post("/uploads", status_code=201)
async def upload(request: Request, file: UploadFile) -> dict[str, str]:
    """Store an input image (PNG, JPEG or WebP; size- and pixel-limited) for Load Image."""
    settings = services(request).settings
    data = await file.read(settings.max_upload_bytes + 1)
    try:
        name = await asyncio.to_thread(
            store_upload,
            data,
            file.filename or "upload.png",
            settings.input_dir,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
    except UploadRefused as error:
        raise HTTPException(error.status, str(error)) from None
    return {"name": name}
