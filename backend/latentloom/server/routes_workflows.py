"""Saved workflow documents, written atomically with the previous version kept."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from latentloom.graph.workflow import WorkflowFormatError
from latentloom.server.paths import PathRefused
from latentloom.server.services import Services
from latentloom.server.workflow_store import WorkflowInfo

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


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
