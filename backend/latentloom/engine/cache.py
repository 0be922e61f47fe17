"""Content-addressed cache of node outputs, bounded by a memory budget.

A node's key hashes its type, spec version, canonical literal inputs and the keys of the
nodes feeding it (see `keys.py`), so equal keys mean equal outputs. Entries are evicted least
recently used first when their estimated size passes the budget. Modules shared between
entries (a LoRA'd model shares the UNet of its checkpoint) are counted once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import torch


class OutputCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        # key -> (value, {storage pointer: bytes})
        self._entries: OrderedDict[str, tuple[Any, dict[int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, value: Any, *, keep: Iterable[str] = ()) -> None:
        """Store a value, evicting old entries past the budget (never those in `keep`)."""
        storages = _storage_sizes([value])
        with self._lock:
            self._entries[key] = (value, storages)
            self._entries.move_to_end(key)
            self._evict(protected=set(keep) | {key})

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def used_bytes(self) -> int:
        return _bytes_of(self._entries.values())

    def _evict(self, protected: set[str]) -> None:
        while _bytes_of(self._entries.values()) > self.budget_bytes:
            victim = next((k for k in self._entries if k not in protected), None)
            if victim is None:
                return
            del self._entries[victim]


def _bytes_of(entries: Iterable[tuple[Any, dict[int, int]]]) -> int:
    merged: dict[int, int] = {}
    for _, storages in entries:
        merged.update(storages)
    return sum(merged.values())


def _storage_sizes(values: Iterable[Any]) -> dict[int, int]:
    """Bytes per distinct storage, keyed by its pointer so shared weights count once."""
    sizes: dict[int, int] = {}
    for tensor in _tensors(values, depth=0):
        storage = tensor.untyped_storage()
        if storage.data_ptr():
            sizes[storage.data_ptr()] = storage.nbytes()
    return sizes


def _tensors(values: Iterable[Any], depth: int) -> Iterable[torch.Tensor]:
    if depth > 6:
        return
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, torch.nn.Module):
            yield from value.parameters()
            yield from value.buffers()
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = (getattr(value, f.name) for f in dataclasses.fields(value))
            yield from _tensors(fields, depth + 1)
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value, depth + 1)
        elif isinstance(value, Mapping):
            yield from _tensors(value.values(), depth + 1)
