"""ComfyUI's websocket protocol, served on `/ws?clientId=X` (our own `/ws` hands over).

On connect the client gets `{"type": "status", "data": {"status": {"exec_info":
{"queue_remaining": N}}, "sid": X}}` (and `executing` if one of its prompts is running); after that, `events.ComfyTranslator` turns the hub's
event stream into ComfyUI's messages for this client, and its own jobs' previews go out as
ComfyUI's binary frames: big-endian u32 1 (preview image), u32 1 (JPEG), then the JPEG.

The connection is a hub subscription like any other, so it is bounded the same way: at most
the hub's event queue of frames waits for a slow client (it is closed once that overflows, and
ComfyUI clients reconnect), and previews sit in a two-slot buffer that drops the oldest.
Messages the client sends (ComfyUI's frontend sends `feature_flags`) are read and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Final

from fastapi import WebSocket, WebSocketDisconnect

from latentloom.interop.comfy.events import ComfyTranslator
from latentloom.server.hub import PreviewFrame, Subscription
from latentloom.server.services import Services

PREVIEW_IMAGE: Final = 1  # ComfyUI's binary event type
JPEG: Final = 1  # ComfyUI's image format code
OVERFLOW_CLOSE_CODE: Final = 4008
MAX_CLIENT_ID: Final = 200


def preview_frame(frame: PreviewFrame) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, JPEG) + frame.jpeg


async def serve(websocket: WebSocket) -> None:
    """Speak ComfyUI's protocol on an accepted-to-be websocket with a `clientId` query."""
    services: Services = websocket.app.state.services
    client_id = websocket.query_params.get("clientId", "")
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        await websocket.close(code=1008, reason=f"clientId must be 1 to {MAX_CLIENT_ID} characters")
        return
    ledger = services.ledger
    translator = ComfyTranslator(
        client_id, ledger.get, lambda: ledger.count("queued") + ledger.count("running")
    )
    await websocket.accept()
    subscription, _ = services.hub.subscribe(None, None)
    try:
        # The translator reads the ledger (counts, a job's document once per job): in a thread,
        # never on the event loop; one call at a time, as its state is this task's alone.
        await websocket.send_json(await asyncio.to_thread(translator.status, with_sid=True))
        running, _ = await asyncio.to_thread(ledger.list, {"running"}, limit=100, offset=0)
        for message in await asyncio.to_thread(translator.resume, running):
            await websocket.send_json(message)
        sender = asyncio.create_task(_send(websocket, subscription, translator))
        receiver = asyncio.create_task(_ignore_incoming(websocket))
        done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                task.result()
    finally:
        services.hub.unsubscribe(subscription)


async def _send(
    websocket: WebSocket, subscription: Subscription, translator: ComfyTranslator
) -> None:
    """Messages in order; previews of this client's jobs only when no event is waiting."""
    while True:
        await subscription.wake.wait()
        subscription.wake.clear()
        if subscription.overflowed:
            await websocket.close(code=OVERFLOW_CLOSE_CODE, reason="fell behind; reconnect")
            return
        while not subscription.events.empty():
            frame = json.loads(subscription.events.get_nowait())
            if frame.get("type") != "event":
                continue
            for message in await asyncio.to_thread(translator.translate, frame["event"]):
                await websocket.send_text(json.dumps(message))
        while subscription.previews and subscription.events.empty():
            preview = subscription.previews.popleft()
            if translator.wants_preview(preview.job):
                await websocket.send_bytes(preview_frame(preview))
        if not subscription.events.empty() or subscription.previews:
            subscription.wake.set()


async def _ignore_incoming(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
