"""Live editing of saved workflows: revisions, merge patches in, saved at once, echoed to watchers.

Every saved workflow has a revision number that grows with each change, whoever makes it.
A tab sends `{"type": "workflow.watch", "name", "revision"?}` and gets, in order with every
later message, `{"type": "workflow.watching", "name", "revision", "document"?}`: the
document comes along when the tab's revision is missing or not the current one, so a tab
that reconnects after missing changes rebases onto it (re-applying its unconfirmed patches)
instead of drifting. Each edit is `{"type": "workflow.patch", "name", "client", "base"?,
"patch"}`, `base` being the revision the tab last saw; the patch is applied to the saved
document (an empty workflow if none exists yet), validated, written atomically, and sent as
`{"type": "workflow.patched", "name", "client", "revision", "base", "patch"}` to every tab
watching that name, the sender included (its acknowledgement). Merge patches carry whole
values, so a patch based on an older revision lands as "last writer wins" per value, and
every watcher applies the same patches in the same (revision) order.

REST writes go through the same lock and revision: `replace` (PUT) echoes the merge patch
from the old document to the new one, `delete` and `rename` tell watchers what happened. A
patch whose base is not a revision of this run (the server restarted since) is not applied:
the tab gets `workflow.watching` with the document and rebases. Revisions start at the
hub's epoch base, so they too keep growing across restarts.

One asyncio lock orders all of it; file work and JSON dumping run in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from latentloom.graph.workflow import CURRENT_VERSION, SCHEMA_ID
from latentloom.server.hub import EventHub, Subscription
from latentloom.server.merge_patch import apply_merge_patch, create_merge_patch
from latentloom.server.workflow_store import WorkflowInfo, WorkflowNotFound, WorkflowStore

EMPTY_WORKFLOW: Final[dict[str, Any]] = {
    "schema": SCHEMA_ID,
    "version": CURRENT_VERSION,
    "nodes": {},
}


class WorkflowSync:
    def __init__(self, store: WorkflowStore, hub: EventHub) -> None:
        self.store, self.hub = store, hub
        self._revisions: dict[str, int] = {}
        self._lock = asyncio.Lock()  # read-modify-write of a document must not interleave

    def revision(self, name: str) -> int:
        """The current revision of `name`; the epoch base until something changes it."""
        return self._revisions.get(name, self.hub.epoch_base)

    def _bump(self, name: str) -> int:
        self._revisions[name] = self.revision(name) + 1
        return self._revisions[name]

    async def watch(self, subscription: Subscription, name: str, revision: int | None) -> None:
        """Follow `name`; the reply carries the document unless `revision` is current."""
        async with self._lock:
            subscription.workflows.add(name)
            current = self.revision(name)
            with_document = revision != current
            frame = await asyncio.to_thread(self._watching_frame, name, current, with_document)
            self.hub.offer(subscription, frame)

    def _watching_frame(self, name: str, revision: int, with_document: bool) -> str:
        message: dict[str, Any] = {"type": "workflow.watching", "name": name, "revision": revision}
        if with_document:
            try:
                message["document"] = self.store.get(name)
            except WorkflowNotFound:
                message["document"] = None
        return json.dumps(message)

    async def apply(
        self,
        name: str,
        client: str,
        patch: dict[str, Any],
        *,
        base: int | None = None,
        subscription: Subscription | None = None,
    ) -> int | None:
        """Apply, save and broadcast one patch; returns the new revision. Raises on bad input.
        None when `base` is from another run: `subscription` is sent the document instead."""
        async with self._lock:
            current = self.revision(name)
            if base is not None and not self.hub.epoch_base <= base <= current:
                if subscription is not None:
                    frame = await asyncio.to_thread(self._watching_frame, name, current, True)
                    self.hub.offer(subscription, frame)
                return None
            revision = current + 1
            message = {
                "type": "workflow.patched",
                "name": name,
                "client": client,
                "revision": revision,
                "base": base,
                "patch": patch,
            }
            frame = await asyncio.to_thread(self._apply_and_save, name, patch, message)
            self._revisions[name] = revision
            self.hub.send_frame_to_watchers(name, frame)
        return revision

    def _apply_and_save(self, name: str, patch: dict[str, Any], message: dict[str, Any]) -> str:
        try:
            current = self.store.get(name)
        except WorkflowNotFound:
            current = EMPTY_WORKFLOW
        self.store.put(name, apply_merge_patch(current, patch), explicit=False)
        return json.dumps(message)

    async def replace(
        self,
        name: str,
        document: dict[str, Any],
        *,
        client: str | None = None,
        overwrite: bool = True,
    ) -> tuple[WorkflowInfo, int]:
        """An explicit save (REST PUT): stored, kept in the history, and sent to watchers as
        the merge patch from the old document. Returns the file's info and the revision."""
        async with self._lock:
            revision = self.revision(name) + 1
            message: dict[str, Any] = {"type": "workflow.patched", "name": name, "client": client}
            message |= {"revision": revision, "base": None}
            info, frame = await asyncio.to_thread(self._replace, name, document, overwrite, message)
            self._revisions[name] = revision
            self.hub.send_frame_to_watchers(name, frame)
        return info, revision

    def _replace(
        self, name: str, document: dict[str, Any], overwrite: bool, message: dict[str, Any]
    ) -> tuple[WorkflowInfo, str]:
        try:
            old: dict[str, Any] = self.store.get(name)
        except (WorkflowNotFound, ValueError):  # ValueError: a corrupt file is replaced whole
            old = {}
        info = self.store.put(name, document, explicit=True, overwrite=overwrite)
        patch = create_merge_patch(old, self.store.get(name))
        return info, json.dumps({**message, "patch": patch})

    async def delete(self, name: str) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.delete, name)
            revision = self._bump(name)
            self.hub.send_to_watchers(
                name, {"type": "workflow.deleted", "name": name, "revision": revision}
            )

    async def rename(self, name: str, new_name: str) -> WorkflowInfo:
        """Rename (WorkflowExists rather than replacing another workflow); watchers of the old
        name are told and follow the new one."""
        async with self._lock:
            info = await asyncio.to_thread(self.store.rename, name, new_name)
            revision = max(self.revision(name), self.revision(info.name)) + 1
            self._revisions[info.name] = revision
            self._bump(name)
            message = {"type": "workflow.renamed", "name": name, "to": info.name}
            self.hub.send_to_watchers(name, {**message, "revision": revision})
            self.hub.rename_watched(name, info.name)
        return info
