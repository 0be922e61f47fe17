"""Live workflow editing over the websocket: patches are saved at once and reach other tabs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from latentloom.server.merge_patch import apply_merge_patch
from tests.server.api_server import running_server
from tests.support import load_example


@pytest.fixture
def server(models_dir: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(models_dir, tmp_path / "data") as base_url:
        yield base_url


def test_merge_patch_follows_rfc_7386() -> None:
    document = {
        "nodes": {"a": {"type": "x", "inputs": {"v": 1}}, "b": {"type": "y"}},
        "groups": [1],
    }
    patch = {"nodes": {"a": {"inputs": {"v": 2}}, "b": None, "c": {"type": "z"}}, "groups": [2, 3]}
    assert apply_merge_patch(document, patch) == {
        "nodes": {"a": {"type": "x", "inputs": {"v": 2}}, "c": {"type": "z"}},
        "groups": [2, 3],
    }
    assert document["nodes"]["a"]["inputs"]["v"] == 1  # not modified
    assert apply_merge_patch(apply_merge_patch(document, patch), patch) == apply_merge_patch(
        document, patch
    )


async def next_message(websocket: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(websocket.recv(), 10))
        if message.get("type") == kind:
            return message


def test_two_tabs_see_each_others_edits_and_every_edit_is_saved(server: str) -> None:
    url = "ws://" + server.removeprefix("http://") + "/ws"
    example = load_example("txt2img.json").to_json()

    async def main() -> None:
        async with websockets.connect(url) as first, websockets.connect(url) as second:
            for tab in (first, second):
                await next_message(tab, "hello")
                await tab.send(json.dumps({"type": "workflow.watch", "name": "shared cat"}))
            await first.send(
                json.dumps(
                    {
                        "type": "workflow.patch",
                        "name": "shared cat",
                        "client": "tab-1",
                        "patch": example,
                    }
                )
            )
            seen = await next_message(second, "workflow.patched")
            assert seen["client"] == "tab-1" and seen["revision"] == 1
            edit = {"nodes": {"sampler": {"inputs": {"seed": 7}}}}
            await second.send(
                json.dumps(
                    {
                        "type": "workflow.patch",
                        "name": "shared cat",
                        "client": "tab-2",
                        "patch": edit,
                    }
                )
            )
            echoed = await next_message(first, "workflow.patched")
            while echoed["client"] != "tab-2":
                echoed = await next_message(first, "workflow.patched")
            assert echoed["patch"] == edit and echoed["revision"] == 2

    asyncio.run(main())
    saved = httpx.get(f"{server}/api/workflows/shared cat").json()
    assert saved["nodes"]["sampler"]["inputs"]["seed"] == 7
    assert saved["nodes"]["positive"] == example["nodes"]["positive"]


def test_a_patch_that_breaks_the_document_is_refused_and_nothing_is_saved(server: str) -> None:
    url = "ws://" + server.removeprefix("http://") + "/ws"
    example = load_example("txt2img.json").to_json()
    httpx.put(f"{server}/api/workflows/keep me", json=example).raise_for_status()

    async def main() -> dict[str, Any]:
        async with websockets.connect(url) as tab:
            await next_message(tab, "hello")
            await tab.send(
                json.dumps(
                    {
                        "type": "workflow.patch",
                        "name": "keep me",
                        "client": "t",
                        "patch": {"nodes": {"sampler": {"inputs": {"seed": {"node": 3}}}}},
                    }
                )
            )
            return await next_message(tab, "error")

    error = asyncio.run(main())
    assert error["request"] == "workflow.patch" and "invalid workflow document" in error["detail"]
    assert httpx.get(f"{server}/api/workflows/keep me").json() == example
