"""Saved workflow documents, written atomically with meaningful versions kept; and
conversion: import what ComfyUI users bring (JSON, PNG, WebP), export to ComfyUI's formats.

Writes go through `WorkflowSync`, the lock and revision counter live editing uses, so a PUT
in the middle of live edits is ordered with them and reaches every watcher as a patch. A
PUT with `If-None-Match: *` creates only (409 if the name is taken), and renaming never
replaces another workflow (409 naming it). JSON bodies are read off the event loop under the
document bounds (`StrictJsonRoute`), and a saved document is sent as its stored text.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from latentloom.interop.comfy.exporter import export_api, export_editor
from latentloom.interop.comfy.importer import import_file_bytes
from latentloom.interop.comfy.report import ComfyFormatError
from latentloom.server.api_models import Detail, WorkflowExported, WorkflowImported
from latentloom.server.paths import PathRefused
from latentloom.server.routes_jobs import StrictJsonRoute
from latentloom.server.services import Services
from latentloom.server.uploads import UploadRefused, read_limited_async
from latentloom.server.workflow_store import WorkflowExists, WorkflowInfo

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


class WorkflowRename(BaseModel):
    name: str = Field(description="The new name; refused (409) if a workflow has it already")


def _strict(method: str, path: str, **options: Any) -> Any:
    """A route on `router` whose JSON body is read by `StrictJsonRoute`."""

    def register(endpoint: Any) -> Any:
        router.add_api_route(
            path, endpoint, methods=[method], route_class_override=StrictJsonRoute, **options
        )
        return endpoint

    return register


@_strict("POST", "/export", response_model=WorkflowExported, responses={422: {"model": Detail}})
async def export_workflow(
    request: Request,
    document: dict[str, Any],
    format: Annotated[Literal["comfy-api", "comfy-editor"], Query()],
) -> WorkflowExported:
    """Our workflow in ComfyUI's API or editor format; nodes ComfyUI cannot run are left
    out and listed in the report."""
    try:
        workflow = await asyncio.to_thread(parse_workflow, document)
    except WorkflowFormatError as error:
        raise HTTPException(422, str(error)) from None
    engine = await services(request).wait_for_engine()
    exported, report = await asyncio.to_thread(EXPORTERS[format], workflow, engine.registry)
    return WorkflowExported(document=exported, report=report)


@router.get("")
async def list_workflows(request: Request) -> dict[str, Any]:
    infos = await asyncio.to_thread(services(request).workflows.list)
    return {"workflows": [_info_json(info) for info in infos]}


def _info_json(info: WorkflowInfo, revision: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": info.name,
        "modified": info.modified.isoformat(),
        "size": info.size,
    }
    if revision is not None:
        body["revision"] = revision
    return body


@router.get("/{name}")
async def get_workflow(request: Request, name: str) -> Response:
    """The saved document (its revision in the `X-Workflow-Revision` header)."""
    state = services(request)
    revision = state.workflow_sync.revision(name)
    try:
        text = await asyncio.to_thread(state.workflows.get_text, name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no saved workflow named {name!r}") from None
    except WorkflowFormatError as error:
        raise HTTPException(422, str(error)) from None
    headers = {"X-Workflow-Revision": str(revision)}
    return Response(text, media_type="application/json", headers=headers)


@_strict("PUT", "/{name}", responses={409: {"model": Detail}, 422: {"model": Detail}})
async def put_workflow(
    request: Request,
    name: str,
    document: dict[str, Any],
    if_none_match: Annotated[str | None, Header(description="'*': create only")] = None,
    x_client_id: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """An explicit save: kept in the history, sent to every tab editing it live."""
    sync = services(request).workflow_sync
    try:
        info, revision = await sync.replace(
            name, document, client=x_client_id, overwrite=if_none_match != "*"
        )
    except (PathRefused, WorkflowFormatError) as error:
        raise HTTPException(422, str(error)) from None
    except WorkflowExists as error:
        raise HTTPException(409, str(error)) from None
    return _info_json(info, revision)


@_strict(
    "POST",
    "/{name}/rename",
    responses={404: {"model": Detail}, 409: {"model": Detail}, 422: {"model": Detail}},
)
async def rename_workflow(request: Request, name: str, body: WorkflowRename) -> dict[str, Any]:
    """Rename a saved workflow; never replaces another one (409 names it)."""
    sync = services(request).workflow_sync
    try:
        info = await sync.rename(name, body.name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None
    except WorkflowExists as error:
        raise HTTPException(409, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no saved workflow named {name!r}") from None
    return _info_json(info, sync.revision(info.name))


@router.delete("/{name}", status_code=204)
async def delete_workflow(request: Request, name: str) -> None:
    try:
        await services(request).workflow_sync.delete(name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no saved workflow named {name!r}") from None
