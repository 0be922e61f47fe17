"""Live editing of saved workflows: merge patches in, saved at once, echoed to every watcher.

An editor tab sends `{"type": "workflow.patch", "name", "client", "patch"}` for each change its
store makes; the patch is applied to the saved document (an empty workflow if none exists
yet), validated, written atomically, and sent as `{"type": "workflow.patched", "name",
"client", "revision", "patch"}` to every tab watching that name, the sender included (its
acknowledgement). So an open workflow is saved as it is edited, and two tabs see each other's
edits. A patch that would make the document invalid is refused and nothing is saved.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from latentloom.graph.workflow import CURRENT_VERSION, SCHEMA_ID
from latentloom.server.hub import EventHub
from latentloom.server.merge_patch import apply_merge_patch
from latentloom.server.workflow_store import WorkflowNotFound, WorkflowStore

EMPTY_WORKFLOW: dict[str, Any] = {"schema": SCHEMA_ID, "version": CURRENT_VERSION, "nodes": {}}


class WorkflowSync:
    def __init__(self, store: WorkflowStore, hub: EventHub) -> None:
        self.store, self.hub = store, hub
        self.revisions: defaultdict[str, int] = defaultdict(int)
        self._lock = asyncio.Lock()  # read-modify-write of a document must not interleave

    async def apply(self, name: str, client: str, patch: dict[str, Any]) -> int:
        """Apply, save and broadcast one patch; returns the new revision. Raises on bad input."""
        async with self._lock:
            await asyncio.to_thread(self._apply_and_save, name, patch)
            self.revisions[name] += 1
            revision = self.revisions[name]
        message = {
            "type": "workflow.patched",
            "name": name,
            "client": client,
            "revision": revision,
            "patch": patch,
        }
        self.hub.send_to_watchers(name, message)
        return revision

    def _apply_and_save(self, name: str, patch: dict[str, Any]) -> None:
        try:
            current = self.store.get(name)
        except WorkflowNotFound:
            current = EMPTY_WORKFLOW
        self.store.put(name, apply_merge_patch(current, patch))
