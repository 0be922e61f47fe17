"""The websocket: typed events as JSON text frames, live previews as binary frames.

Connect to `/ws?jobs=all` (or `jobs=ID,ID`) and optionally `last_event_id=N` to resume. The
server first sends `{"type": "hello", "last_event_id": N, "complete": bool, "epoch_base": B}`;
complete is false when events after the given id can no longer be replayed (the buffer moved
on, or the id is from before a restart): the client must reload job states from
`GET /api/jobs` and carry on from N. Then come `{"type": "event", "id": N, "event": {...}}`
frames. A client may send `{"type": "subscribe", "jobs": "all" | [ids]}` to change what it
follows, and edit saved workflows live with `workflow.watch` / `workflow.patch` (see
`workflow_sync.py`). Binary frames are previews: see `PreviewFrame.encode`.

Clients send JSON text of at most `MAX_MESSAGE_BYTES`; a binary frame gets a 1003 close
with the reason. A client that falls more than the hub's per-client bound behind (it stopped
reading) is dropped by the hub at once and closed here with code 4008 and a reason; it
reconnects with its last id. The close waits at most `CLOSE_TIMEOUT_S` for the client to
take it.

`/ws?clientId=X` speaks ComfyUI's protocol instead (`interop/comfy/routes_ws.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from latentloom.graph.workflow import WorkflowFormatError
from latentloom.interop.comfy import routes_ws as comfy_ws
from latentloom.server.hub import EventHub, Subscription
from latentloom.server.paths import PathRefused
from latentloom.server.workflow_store import workflow_name
from latentloom.server.workflow_sync import WorkflowSync

router = APIRouter()
OVERFLOW_CLOSE_CODE: Final = 4008
UNSUPPORTED_DATA: Final = 1003
MAX_MESSAGE_BYTES: Final = 2**20
CLOSE_TIMEOUT_S: Final = 30.0
BINARY_REASON: Final = "binary frames are not accepted here; send JSON text messages"


def overflow_reason(limit: int) -> str:
    return f"fell more than {limit // 2**20} MiB behind; reconnect with last_event_id to resume"


class BinaryFrame(Exception):
    """The client sent a binary frame."""


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
            {
                "type": "hello",
                "last_event_id": hub.last_id,
                "complete": complete,
                "epoch_base": hub.epoch_base,
            }
        )
        await _serve(websocket, hub, subscription)
    finally:
        hub.unsubscribe(subscription)


async def _serve(websocket: WebSocket, hub: EventHub, subscription: Subscription) -> None:
    sync = websocket.app.state.services.workflow_sync
    sender = asyncio.create_task(_send(websocket, subscription))
    receiver = asyncio.create_task(_receive(websocket, sync, subscription))
    dropped = asyncio.create_task(subscription.dropped.wait())
    done, pending = await asyncio.wait(
        {sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    close: tuple[int, str] | None = None
    if dropped in done:
        close = (OVERFLOW_CLOSE_CODE, overflow_reason(hub.client_bytes))
    elif receiver in done and isinstance(receiver.exception(), BinaryFrame):
        close = (UNSUPPORTED_DATA, BINARY_REASON)
    for task in done:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, BinaryFrame):
            task.result()
    if close is not None:
        # A client that does not read cannot take the close frame either: wait a while, then
        # let the server drop the connection.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
            await asyncio.wait_for(websocket.close(*close), CLOSE_TIMEOUT_S)


async def _send(websocket: WebSocket, subscription: Subscription) -> None:
    """Events first, in order; previews only when no event is waiting (they go first when slow)."""
    while not subscription.overflowed:
        await subscription.wake.wait()
        subscription.wake.clear()
        while not subscription.events.empty():
            await websocket.send_text(subscription.events.get_nowait())
        while subscription.previews and subscription.events.empty():
            await websocket.send_bytes(subscription.previews.popleft().encode())
        if not subscription.events.empty() or subscription.previews:
            subscription.wake.set()


async def _receive(websocket: WebSocket, sync: WorkflowSync, subscription: Subscription) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise BinaryFrame
        request: Any = None
        try:
            if len(text) > MAX_MESSAGE_BYTES:
                raise ValueError(
                    f"a message of {len(text):,} characters is over the {MAX_MESSAGE_BYTES:,} "
                    "allowed; save a large document with PUT /api/workflows/{name} instead"
                )
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object with a 'type'")
            await _handle(request, sync, subscription)
        except (ValueError, PathRefused, WorkflowFormatError) as error:
            reply = {"type": "error", "request": _kind(request), "detail": str(error)}
            sync.hub.offer(subscription, json.dumps(reply))


def _kind(request: Any) -> str | None:
    return request.get("type") if isinstance(request, dict) else None


async def _handle(request: dict[str, Any], sync: WorkflowSync, subscription: Subscription) -> None:
    kind = request.get("type")
    if kind == "subscribe":
        jobs = _parse_jobs(request.get("jobs"))
        subscription.jobs = set(jobs) if jobs is not None else None
    elif kind == "workflow.watch":
        name = workflow_name(_string(request, "name"))
        await sync.watch(subscription, name, _revision(request, "revision"))
    elif kind == "workflow.unwatch":
        subscription.workflows.discard(_string(request, "name"))
    elif kind == "workflow.patch":
        patch = request.get("patch")
        if not isinstance(patch, dict):
            raise ValueError(
                "workflow.patch needs a 'patch' object (a JSON merge patch of the document)"
            )
        name = workflow_name(_string(request, "name"))
        base = _revision(request, "base")
        client = _string(request, "client")
        await sync.apply(name, client, patch, base=base, subscription=subscription)
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


def _revision(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{request.get('type')}: {key!r} must be a revision number, got {value!r}")
    return value
