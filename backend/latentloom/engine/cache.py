"""Content-addressed cache of node outputs, bounded by a memory budget.

A node's key hashes its type, spec version, canonical literal inputs and the keys of the
nodes feeding it (see `keys.py`), so equal keys mean equal outputs. Entries are evicted least
recently used first when their estimated size passes the budget. Tensors are counted by
storage, with a reference count, so weights shared between entries (a LoRA'd model shares
the UNet of its checkpoint) count once and leave the total only with their last entry.
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
        self._entries: OrderedDict[str, tuple[Any, dict[int, int]]] = OrderedDict()
        self._references: dict[int, int] = {}  # storage pointer -> entries holding it
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, value: Any, *, keep: Iterable[str] = ()) -> None:
        """Store a value, evicting old entries past the budget (never `key` nor those in `keep`)."""
        storages = _storage_sizes([value])
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = (value, storages)
            for pointer, size in storages.items():
                self._references[pointer] = self._references.get(pointer, 0) + 1
                if self._references[pointer] == 1:
                    self._used += size
            if self._used > self.budget_bytes:
                self._evict(protected={key, *keep})

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._references.clear()
            self._used = 0

    @property
    def used_bytes(self) -> int:
        return self._used

    def _evict(self, protected: set[str]) -> None:
        for victim in [k for k in self._entries if k not in protected]:
            if self._used <= self.budget_bytes:
                return
            self._remove(victim)

    def _remove(self, key: str) -> None:
        _, storages = self._entries.pop(key)
        for pointer, size in storages.items():
            self._references[pointer] -= 1
            if self._references[pointer] == 0:
                del self._references[pointer]
                self._used -= size


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
