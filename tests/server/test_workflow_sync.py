"""Live workflow editing over the websocket against a real server: revisions, echoes to every
tab, a dropped tab that rebases its pending patches, REST writes through the same lock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from latentloom.server.merge_patch import apply_merge_patch, create_merge_patch
from tests.server.api_server import running_server
from tests.support import load_example


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(models_dir, tmp_path_factory.mktemp("sync") / "data") as base_url:
        yield base_url


def ws_url(server: str) -> str:
    return "ws://" + server.removeprefix("http://") + "/ws"


def test_merge_patch_follows_rfc_7386() -> None:
    document: dict[str, Any] = {
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
    after = apply_merge_patch(document, patch)
    assert create_merge_patch(document, after) == patch
    assert apply_merge_patch(document, create_merge_patch(document, after)) == after


async def next_message(websocket: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(websocket.recv(), 20))
        if message.get("type") == kind:
            return message


class Tab:
    """What the editor's sync does, in miniature: a confirmed document and revision from the
    server, patches sent and not yet echoed, rebasing onto `workflow.watching`."""

    def __init__(self, url: str, name: str, client: str) -> None:
        self.url, self.name, self.client = url, name, client
        self.confirmed: dict[str, Any] = {}
        self.revision: int | None = None
        self.pending: list[dict[str, Any]] = []
        self.socket: Any = None

    @property
    def local(self) -> dict[str, Any]:
        document = self.confirmed
        for patch in self.pending:
            document = apply_merge_patch(document, patch)
        return document

    async def connect(self) -> None:
        self.socket = await websockets.connect(self.url)
        await next_message(self.socket, "hello")
        watch: dict[str, Any] = {"type": "workflow.watch", "name": self.name}
        if self.revision is not None:
            watch["revision"] = self.revision
        await self.socket.send(json.dumps(watch))
        await self.handle(await next_message(self.socket, "workflow.watching"))

    async def close(self) -> None:
        await self.socket.close()

    async def edit(self, patch: dict[str, Any]) -> None:
        self.pending.append(patch)
        await self.send(patch)

    async def send(self, patch: dict[str, Any]) -> None:
        message = {"type": "workflow.patch", "name": self.name, "client": self.client}
        await self.socket.send(json.dumps({**message, "base": self.revision, "patch": patch}))

    async def handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "workflow.watching":
            self.revision = message["revision"]
            if "document" in message:  # missed something: rebase the pending patches onto it
                self.confirmed = message["document"]
                for patch in self.pending:
                    await self.send(patch)
        elif message["type"] == "workflow.patched":
            self.revision = message["revision"]
            self.confirmed = apply_merge_patch(self.confirmed, message["patch"])
            if message["client"] == self.client and self.pending:
                self.pending.pop(0)

    async def settle(self, revision: int) -> None:
        """Read until the server's revision `revision` is in and nothing is pending."""
        while self.revision != revision or self.pending:
            await self.handle(json.loads(await asyncio.wait_for(self.socket.recv(), 20)))


def seed(value: int) -> dict[str, Any]:
    return {"nodes": {"sampler": {"inputs": {"seed": value}}}}


def test_two_tabs_see_each_others_edits_in_revision_order(server: str) -> None:
    example = load_example("txt2img.json").to_json()

    async def main() -> tuple[Tab, Tab]:
        first, second = (
            Tab(ws_url(server), "shared cat", "tab-1"),
            Tab(ws_url(server), "shared cat", "tab-2"),
        )
        await first.connect()
        await second.connect()
        assert first.confirmed is None or first.confirmed == {}  # not saved yet
        start = first.revision
        assert start is not None and start == second.revision
        await first.edit(example)
        await second.settle(start + 1)
        await second.edit(seed(7))
        await first.edit({"nodes": {"positive": {"inputs": {"text": "a dog"}}}})
        await first.settle(start + 3)
        await second.settle(start + 3)
        await first.close()
        await second.close()
        return first, second

    first, second = asyncio.run(main())
    saved = httpx.get(f"{server}/api/workflows/shared cat").json()
    assert first.local == second.local == saved
    assert saved["nodes"]["sampler"]["inputs"]["seed"] == 7
    assert saved["nodes"]["positive"]["inputs"]["text"] == "a dog"


def test_a_tab_that_drops_with_pending_patches_rebases_and_both_converge(server: str) -> None:
    httpx.put(f"{server}/api/workflows/flaky", json=load_example("txt2img.json").to_json())

    async def main() -> tuple[Tab, Tab]:
        steady, flaky = (
            Tab(ws_url(server), "flaky", "steady"),
            Tab(ws_url(server), "flaky", "flaky"),
        )
        await steady.connect()
        await flaky.connect()
        start = flaky.revision
        assert start is not None
        # The flaky tab's edits go out as its connection dies: the server may have applied
        # them or not; their echoes are lost either way.
        await flaky.edit(seed(1))
        await flaky.edit({"nodes": {"latent": {"inputs": {"width": 320}}}})
        await flaky.socket.close()
        # Meanwhile the other tab edits on.
        await steady.edit({"nodes": {"positive": {"inputs": {"text": "while you were away"}}}})
        await steady.edit(seed(2))
        while steady.pending:
            await steady.handle(json.loads(await asyncio.wait_for(steady.socket.recv(), 20)))
        assert flaky.pending and flaky.revision == start  # it knows it has unconfirmed work
        await flaky.connect()  # watch with its old revision: the document comes back
        rebased_on = flaky.revision
        assert rebased_on is not None and rebased_on > start
        assert flaky.confirmed["nodes"]["positive"]["inputs"]["text"] == "while you were away"
        await flaky.settle(rebased_on + 2)  # its two patches, re-sent on the new revision
        await steady.settle(rebased_on + 2)
        await steady.close()
        await flaky.close()
        return steady, flaky

    steady, flaky = asyncio.run(main())
    saved = httpx.get(f"{server}/api/workflows/flaky").json()
    assert steady.local == flaky.local == saved
    assert saved["nodes"]["sampler"]["inputs"]["seed"] == 1  # rebased on top: it came last
    assert saved["nodes"]["latent"]["inputs"]["width"] == 320
    assert saved["nodes"]["positive"]["inputs"]["text"] == "while you were away"


def test_a_put_during_live_edits_bumps_the_revision_and_reaches_watchers(server: str) -> None:
    example = load_example("txt2img.json").to_json()
    httpx.put(f"{server}/api/workflows/put live", json=example).raise_for_status()

    async def main() -> tuple[Tab, dict[str, Any]]:
        tab = Tab(ws_url(server), "put live", "tab")
        await tab.connect()
        start = tab.revision
        assert start is not None
        await tab.edit(seed(5))
        await tab.settle(start + 1)
        replaced = {**example, "meta": {"title": "saved from a script"}}
        response = await asyncio.to_thread(
            httpx.put,
            f"{server}/api/workflows/put live",
            json=replaced,
            headers={"X-Client-Id": "script"},
        )
        assert response.status_code == 200 and response.json()["revision"] == start + 2
        echo = await next_message(tab.socket, "workflow.patched")
        await tab.handle(echo)
        await tab.close()
        return tab, echo

    tab, echo = asyncio.run(main())
    assert echo["client"] == "script" and echo["base"] is None
    # The PUT replaced the document whole: the seed edit is undone, the title arrives.
    assert echo["patch"]["meta"] == {"title": "saved from a script"}
    assert tab.local == httpx.get(f"{server}/api/workflows/put live").json()
    assert (
        tab.local["nodes"]["sampler"]["inputs"]["seed"]
        == example["nodes"]["sampler"]["inputs"]["seed"]
    )


def test_a_patch_based_on_another_run_gets_the_document_instead(server: str) -> None:
    httpx.put(f"{server}/api/workflows/old base", json=load_example("txt2img.json").to_json())

    async def main() -> dict[str, Any]:
        async with websockets.connect(ws_url(server)) as websocket:
            hello = await next_message(websocket, "hello")
            stale = hello["epoch_base"] - 5  # a revision from before a restart
            message = {"type": "workflow.patch", "name": "old base", "client": "c"}
            await websocket.send(json.dumps({**message, "base": stale, "patch": seed(99)}))
            return await next_message(websocket, "workflow.watching")

    watching = asyncio.run(main())
    assert watching["document"]["nodes"]["sampler"]["inputs"]["seed"] != 99
    saved = httpx.get(f"{server}/api/workflows/old base").json()
    assert saved == watching["document"]  # nothing applied


def test_a_patch_that_breaks_the_document_is_refused_and_nothing_is_saved(server: str) -> None:
    example = load_example("txt2img.json").to_json()
    httpx.put(f"{server}/api/workflows/keep me", json=example).raise_for_status()

    async def main() -> dict[str, Any]:
        async with websockets.connect(ws_url(server)) as tab:
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


def test_renaming_onto_a_saved_workflow_is_a_409_naming_it(server: str) -> None:
    example = load_example("txt2img.json").to_json()
    for name in ("rename me", "taken"):
        httpx.put(f"{server}/api/workflows/{name}", json=example).raise_for_status()
    refused = httpx.post(f"{server}/api/workflows/rename me/rename", json={"name": "taken"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "a saved workflow named 'taken' already exists; choose another name, "
        "or open it and delete it first"
    )
    created_only = httpx.put(
        f"{server}/api/workflows/taken", json=example, headers={"If-None-Match": "*"}
    )
    assert created_only.status_code == 409
    renamed = httpx.post(f"{server}/api/workflows/rename me/rename", json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
    assert httpx.get(f"{server}/api/workflows/rename me").status_code == 404
    assert httpx.get(f"{server}/api/workflows/renamed").json() == example
