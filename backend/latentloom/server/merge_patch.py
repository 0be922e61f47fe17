"""JSON Merge Patch (RFC 7386): how editors send their edits of a workflow document.

An edit of node "5" is `{"nodes": {"5": {...the node...}}}`, a deletion `{"nodes": {"5": null}}`;
arrays (groups) are replaced whole. Small, order-free and idempotent: applying a patch twice
gives the same document, so a resent edit does no harm.
"""

from __future__ import annotations

from typing import Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """A new document: `target` with `patch` merged in (neither argument is modified)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_merge_patch(merged.get(key), value)
    return merged
