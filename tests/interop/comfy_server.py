"""What the ComfyUI API tests share: a prompt in ComfyUI's API format and a websocket listener."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.request
from typing import Any

import websockets

# ComfyUI's default graph, as its "Save (API)" writes it, at a size the tiny checkpoint runs fast.
TXT2IMG: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 7,
            "steps": 2,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
        "_meta": {"title": "KSampler"},
    },
    "4": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "tiny-sd15.safetensors"},
        "_meta": {"title": "Load Checkpoint"},
    },
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1},
        "_meta": {"title": "Empty Latent Image"},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]},
        "_meta": {"title": "positive"},
    },
    "7": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "blurry", "clip": ["4", 1]},
        "_meta": {"title": "negative"},
    },
    "8": {
        "class_type": "VAEDecode",
        "inputs": {"samples": ["3", 0], "vae": ["4", 2]},
        "_meta": {"title": "VAE Decode"},
    },
    "9": {
        "class_type": "SaveImage",
        "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]},
        "_meta": {"title": "Save Image"},
    },
}


def txt2img(**changes: Any) -> dict[str, Any]:
    """TXT2IMG with `node__input=value` changes."""
    prompt = copy.deepcopy(TXT2IMG)
    for key, value in changes.items():
        node, name = key.split("__")
        prompt[node]["inputs"][name] = value
    return prompt


def post_like_comfyui_example(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /prompt as ComfyUI's websockets_api_example.py does: urllib, its default form type."""
    request = urllib.request.Request(f"{base_url}/prompt", data=json.dumps(body).encode("utf-8"))
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["content-type"] == "application/json"
        return json.loads(response.read())  # type: ignore[no-any-return]


def ws_url(base_url: str, client_id: str) -> str:
    return f"ws://{base_url.removeprefix('http://')}/ws?clientId={client_id}"


async def listen(url: str, prompt_ids: set[str], ready: asyncio.Event, frames: list[Any]) -> None:
    """Record frames (dicts, or bytes) until `executing` with node null for every prompt id."""
    async with websockets.connect(url) as websocket:
        frames.append(json.loads(await websocket.recv()))
        ready.set()
        waiting = set(prompt_ids)
        while waiting:
            frame = await asyncio.wait_for(websocket.recv(), 120)
            if isinstance(frame, bytes):
                frames.append(frame)
                continue
            message = json.loads(frame)
            frames.append(message)
            data = message["data"]
            if message["type"] == "executing" and data["node"] is None:
                waiting.discard(data["prompt_id"])


def run_and_listen(base_url: str, client_id: str, action: Any, prompt_ids: set[str]) -> list[Any]:
    """Open `/ws?clientId=`, then call `action()` (which queues), and record until all end."""

    async def main() -> list[Any]:
        frames: list[Any] = []
        ready = asyncio.Event()
        listener = asyncio.create_task(
            listen(ws_url(base_url, client_id), prompt_ids, ready, frames)
        )
        await ready.wait()
        await asyncio.to_thread(action)
        await asyncio.wait_for(listener, 300)
        return frames

    return asyncio.run(main())


def messages(frames: list[Any], prompt_id: str | None = None) -> list[dict[str, Any]]:
    return [
        f
        for f in frames
        if isinstance(f, dict) and (prompt_id is None or f["data"].get("prompt_id") == prompt_id)
    ]
