"""Resuming across a restart: event ids keep growing, and an id from before the restart is
told to resync (complete: false) instead of being told it missed nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.server.api_server import free_port, wait_until_ready
from tests.server.test_restart import start_server
from tests.support import load_example


async def hello(port: int, last_event_id: int | None = None) -> dict[str, Any]:
    resume = "" if last_event_id is None else f"?last_event_id={last_event_id}"
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws{resume}") as websocket:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(websocket.recv(), 20))
        return message


def wait_until_answering(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/api/system", timeout=5).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{base} did not answer in {timeout} s")


def test_an_event_id_from_before_a_restart_is_told_to_resync(
    models_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(models_dir, tmp_path / "data", port)
    try:
        wait_until_ready(base)
        workflow = load_example("txt2img.json").with_input("sampler", "steps", 2).to_json()
        ran = httpx.post(
            f"{base}/api/jobs", params={"wait": "true"}, json={"workflow": workflow}, timeout=120
        )
        assert ran.status_code == 201
        before = asyncio.run(hello(port))
        old_id = before["last_event_id"]
        assert old_id > before["epoch_base"]  # the job's events were numbered
        assert asyncio.run(hello(port, old_id))["complete"] is True  # same run: nothing missed
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        server = start_server(models_dir, tmp_path / "data", port)
        wait_until_answering(base)  # the websocket needs no engine
        after = asyncio.run(hello(port, old_id))
        assert after["complete"] is False  # events may have happened in between: reload
        assert after["epoch_base"] > old_id and after["last_event_id"] >= after["epoch_base"]
        assert asyncio.run(hello(port, after["last_event_id"]))["complete"] is True
    finally:
        server.kill()
        server.wait(timeout=30)
