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


def create_merge_patch(before: Any, after: Any) -> Any:
    """The smallest merge patch turning `before` into `after` (keys that went become null).

    `apply_merge_patch(before, create_merge_patch(before, after)) == after` whenever `after`
    holds no null inside an object (workflow documents never do).
    """
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        if key in before and before[key] == value:
            continue
        patch[key] = create_merge_patch(before.get(key), value)
    return patch
