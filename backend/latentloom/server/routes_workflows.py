"""Saved workflow documents, written atomically with the previous version kept; and
conversion: import what ComfyUI users bring (JSON, PNG, WebP), export to ComfyUI's formats."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from latentloom.interop.comfy.exporter import export_api, export_editor
from latentloom.interop.comfy.importer import import_file_bytes
from latentloom.interop.comfy.report import ComfyFormatError
from latentloom.server.api_models import Detail, WorkflowExported, WorkflowImported
from latentloom.server.paths import PathRefused
from latentloom.server.services import Services
from latentloom.server.uploads import UploadRefused, read_limited_async
from latentloom.server.workflow_store import WorkflowInfo

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
EXPORTERS = {"comfy-api": export_api, "comfy-editor": export_editor}


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.post(
    "/import",
    response_model=WorkflowImported,
    responses={413: {"model": Detail}, 422: {"model": Detail}},
)
async def import_workflow(
    request: Request,
    filename: Annotated[str, Query(max_length=255, description="helps name the format")] = "",
) -> WorkflowImported:
    """Our workflow from a file's raw bytes: ours, a ComfyUI API prompt or editor workflow
    (JSON), or a PNG/WebP carrying one. Unsupported ComfyUI classes become placeholders,
    listed in the report; a malformed file is refused whole, naming where (422)."""
    state = services(request)
    try:
        data = await read_limited_async(request.stream(), state.settings.max_upload_bytes)
    except UploadRefused as error:
        raise HTTPException(error.status, str(error)) from None
    engine = await state.wait_for_engine()
    try:
        result = await asyncio.to_thread(import_file_bytes, data, filename, engine.registry)
    except ComfyFormatError as error:
        raise HTTPException(422, str(error)) from None
    return WorkflowImported(workflow=result.workflow, report=result.report)


@router.post("/export", response_model=WorkflowExported, responses={422: {"model": Detail}})
async def export_workflow(
    request: Request,
    document: dict[str, Any],
    format: Annotated[Literal["comfy-api", "comfy-editor"], Query()],
) -> WorkflowExported:
    """Our workflow in ComfyUI's API or editor format; nodes ComfyUI cannot run are left
    out and listed in the report."""
    try:
        workflow = parse_workflow(document)
    except WorkflowFormatError as error:
        raise HTTPException(422, str(error)) from None
    engine = await services(request).wait_for_engine()
    exported, report = await asyncio.to_thread(EXPORTERS[format], workflow, engine.registry)
    return WorkflowExported(document=exported, report=report)


@router.get("")
async def list_workflows(request: Request) -> dict[str, Any]:
    infos = await asyncio.to_thread(services(request).workflows.list)
    return {"workflows": [_info_json(info) for info in infos]}


def _info_json(info: WorkflowInfo) -> dict[str, Any]:
    return {"name": info.name, "modified": info.modified.isoformat(), "size": info.size}


@router.get("/{name}")
async def get_workflow(request: Request, name: str) -> dict[str, Any]:
    try:
        return await asyncio.to_thread(services(request).workflows.get, name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no saved workflow named {name!r}") from None


@router.put("/{name}")
async def put_workflow(request: Request, name: str, document: dict[str, Any]) -> dict[str, Any]:
    try:
        info = await asyncio.to_thread(services(request).workflows.put, name, document)
    except (PathRefused, WorkflowFormatError) as error:
        raise HTTPException(422, str(error)) from None
    return _info_json(info)


@router.delete("/{name}", status_code=204)
async def delete_workflow(request: Request, name: str) -> None:
    try:
        await asyncio.to_thread(services(request).workflows.delete, name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no saved workflow named {name!r}") from None
