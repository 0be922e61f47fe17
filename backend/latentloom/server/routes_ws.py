"""The websocket: typed events as JSON text frames, live previews as binary frames.

Connect to `/ws?jobs=all` (or `jobs=ID,ID`) and optionally `last_event_id=N` to resume. The
server first sends `{"type": "hello", "last_event_id": N, "complete": bool}` (complete is false
when events after the given id were already dropped from the replay buffer), then
`{"type": "event", "id": N, "event": {...}}` frames. A client may send
`{"type": "subscribe", "jobs": "all" | [ids]}` to change what it follows, and edit saved
workflows live with `workflow.watch` / `workflow.patch` (see `workflow_sync.py`). If a client falls
so far behind that its queue overflows, it gets `{"type": "overflow"}` and is closed; it
reconnects with its last id. Binary frames are previews: see `PreviewFrame.encode`.

`/ws?clientId=X` speaks ComfyUI's protocol instead (`interop/comfy/routes_ws.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from latentloom.graph.workflow import WorkflowFormatError
from latentloom.interop.comfy import routes_ws as comfy_ws
from latentloom.server.hub import EventHub, Subscription
from latentloom.server.paths import PathRefused
from latentloom.server.workflow_store import workflow_name
from latentloom.server.workflow_sync import WorkflowSync

router = APIRouter()
OVERFLOW_CLOSE_CODE = 4008


def _parse_jobs(value: Any) -> list[str] | None:
    if value in (None, "all"):
        return None
    if isinstance(value, str):
        return [job for job in value.split(",") if job]
    if isinstance(value, list) and all(isinstance(job, str) for job in value):
        return value
    raise ValueError("jobs must be 'all', a comma-separated string or a list of job ids")


@router.websocket("/ws")
async def events(websocket: WebSocket) -> None:
    if "clientId" in websocket.query_params:  # a ComfyUI client: it speaks ComfyUI's protocol
        await comfy_ws.serve(websocket)
        return
    hub: EventHub = websocket.app.state.services.hub
    query = websocket.query_params
    try:
        jobs = _parse_jobs(query.get("jobs"))
        last_event_id = int(query["last_event_id"]) if "last_event_id" in query else None
    except ValueError as error:
        await websocket.close(code=1008, reason=str(error)[:120])
        return
    await websocket.accept()
    subscription, complete = hub.subscribe(jobs, last_event_id)
    try:
        await websocket.send_json(
            {"type": "hello", "last_event_id": hub.last_id, "complete": complete}
        )
        sender = asyncio.create_task(_send(websocket, subscription))
        sync = websocket.app.state.services.workflow_sync
        receiver = asyncio.create_task(_receive(websocket, sync, subscription))
        done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                task.result()
    finally:
        hub.unsubscribe(subscription)


async def _send(websocket: WebSocket, subscription: Subscription) -> None:
    """Events first, in order; previews only when no event is waiting (they go first when slow)."""
    while True:
        await subscription.wake.wait()
        subscription.wake.clear()
        if subscription.overflowed:
            await websocket.send_json({"type": "overflow"})
            await websocket.close(
                code=OVERFLOW_CLOSE_CODE, reason="fell behind; resume with last_event_id"
            )
            return
        while not subscription.events.empty():
            await websocket.send_text(subscription.events.get_nowait())
        while subscription.previews and subscription.events.empty():
            await websocket.send_bytes(subscription.previews.popleft().encode())
        if not subscription.events.empty() or subscription.previews:
            subscription.wake.set()


async def _receive(websocket: WebSocket, sync: WorkflowSync, subscription: Subscription) -> None:
    while True:
        message = await websocket.receive_text()
        request: Any = None
        try:
            request = json.loads(message)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object with a 'type'")
            await _handle(request, sync, subscription)
        except (ValueError, PathRefused, WorkflowFormatError) as error:
            await websocket.send_json(
                {"type": "error", "request": _kind(request), "detail": str(error)}
            )


def _kind(request: Any) -> str | None:
    return request.get("type") if isinstance(request, dict) else None


async def _handle(request: dict[str, Any], sync: WorkflowSync, subscription: Subscription) -> None:
    kind = request.get("type")
    if kind == "subscribe":
        jobs = _parse_jobs(request.get("jobs"))
        subscription.jobs = set(jobs) if jobs is not None else None
    elif kind == "workflow.watch":
        subscription.workflows.add(workflow_name(_string(request, "name")))
    elif kind == "workflow.unwatch":
        subscription.workflows.discard(_string(request, "name"))
    elif kind == "workflow.patch":
        patch = request.get("patch")
        if not isinstance(patch, dict):
            raise ValueError(
                "workflow.patch needs a 'patch' object (a JSON merge patch of the document)"
            )
        await sync.apply(workflow_name(_string(request, "name")), _string(request, "client"), patch)
    else:
        raise ValueError(
            f"unknown message type {kind!r}; expected subscribe, workflow.watch, "
            "workflow.unwatch or workflow.patch"
        )


def _string(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{request.get('type')} needs a non-empty string {key!r}")
    return value
