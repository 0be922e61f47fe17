"""Convert a checkpoint's weights on a thread before its load, while the engine stack imports.

A cold `latentloom run` waits ~3 s for diffusers and transformers to import before Load
Checkpoint can build its modules, and the load then spends ~1.2 s converting the file's fp16
tensors to the compute dtype. The conversion needs only torch and the file: started once the
workflow is validated (cli.py), it runs on a core the imports leave idle, and the load takes
the converted tensors instead of converting them (`bench.weight_prefetch`: 0.86-0.91x the time
of a cold load, at the same peak memory).

The server's worker child does not use it: on the 2-core machine we measure on, the server
process's own start-up already takes the core the child's imports leave, and converting
there beside them made a cold-disk first image ~1.5 s later (the server reads the files into
the page cache instead: engine/read_ahead.py).

- `start(path, dtype)` converts, in file order, every floating tensor of an SD 1.x / 2.x / SDXL
  checkpoint under a prefix the checkpoint loader reads (EMA copies and training state are
  left alone) that is stored in another dtype; other files are left alone.
- `claimed(file)` wraps a load of that very file (same device, inode, size and mtime): inside,
  `file.read` takes each tensor the prefetch has ready, waits for the one it is converting, and
  reads the rest itself, so the two share the work and nothing is converted twice. Leaving it
  drops what the load did not take. A load also ends every other prefetch: memory for weights
  goes to the load that runs, not to guesses.
- Memory: each converted tensor exists once, handed over, never copied. What no load claims
  within `UNCLAIMED_SECONDS` of its conversion ending is dropped, as is everything at
  `stop_all()`.

Imports only what `SafetensorsFile` does: it must run while another thread imports diffusers.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch

from latentloom.models.errors import CheckpointError
from latentloom.models.flux_keys import FLUX_PREFIX, flux_prefix
from latentloom.models.layout import (
    SDXL_REFINER_TEXT_G,
    TEXT_TOWERS,
    UNET_PREFIX,
    VAE_PREFIX,
)
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.sd3_keys import is_sd3

log = logging.getLogger(__name__)
UNCLAIMED_SECONDS: Final = 120.0
# What the SD checkpoint loader reads (models/keymap.py `to_diffusers`), the refiner's too.
LOADED_PREFIXES: Final = (
    UNET_PREFIX,
    VAE_PREFIX,
    SDXL_REFINER_TEXT_G.prefix,
    *sorted({tower.prefix for towers in TEXT_TOWERS.values() for tower in towers}),
)


@dataclass(frozen=True)
class FileIdentity:
    """Which file: a file replaced by rename (as ours are written) gets a new inode."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def convertible_keys(file: SafetensorsFile, dtype: torch.dtype) -> list[str]:
    """The tensors a prefetch converts to `dtype`: none unless `file` is an SD checkpoint."""
    keys = file.keys()
    if is_sd3(keys) or flux_prefix(keys) == FLUX_PREFIX:
        return []  # their loaders read other layouts (sd3_load.py, flux_checkpoint.py)
    if not any(key.startswith(UNET_PREFIX) for key in keys):
        return []  # a LoRA, a VAE or ControlNet file, ...: not what Load Checkpoint reads
    return [
        key
        for key in keys
        if key.startswith(LOADED_PREFIXES)
        and file.dtype(key).is_floating_point
        and file.dtype(key) != dtype
    ]


class Prefetch:
    """One file's conversion on a daemon thread; a load takes its tensors (see the module)."""

    def __init__(
        self, path: Path, dtype: torch.dtype, identity: FileIdentity, keys: list[str]
    ) -> None:
        self.path, self.dtype, self.identity, self.keys = path, dtype, identity, keys
        self._condition = threading.Condition()
        self._ready: dict[str, torch.Tensor] = {}
        self._converting: str | None = None
        self._taken: set[str] = set()  # keys the load reads itself: the thread skips them
        self._claimed = False
        self._stopped = False
        self._converted = threading.Event()  # the thread went through every key (or stopped)
        self.handed = 0  # tensors a load took converted
        self._thread = threading.Thread(target=self._run, name="latentloom-prefetch", daemon=True)

    def start(self) -> Prefetch:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with SafetensorsFile(self.path) as file:
                if FileIdentity.of(os.fstat(file.fileno())) != self.identity:
                    return  # replaced since it was asked for: a load will not match it
                for key in self.keys:
                    with self._condition:
                        if self._stopped:
                            return
                        if key in self._taken:
                            continue
                        self._converting = key
                    tensor = file.read(key, dtype=self.dtype)
                    with self._condition:
                        self._converting = None
                        if not self._stopped:
                            self._ready[key] = tensor
                        self._condition.notify_all()
        except Exception as error:  # the load reads the file itself and reports what is wrong
            log.info("prefetch of %s stopped: %s", self.path, error)
        finally:
            with self._condition:
                self._converting = None
                self._condition.notify_all()
            self._converted.set()
        self._expire_unclaimed()

    def _expire_unclaimed(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._claimed or self._stopped, UNCLAIMED_SECONDS)
            if not self._claimed:
                self._stop_locked()

    def take(self, key: str, dtype: torch.dtype) -> torch.Tensor | None:
        """The converted tensor `key` if it is ready in `dtype` (waiting while it is being
        converted), handed over; None when the caller must read it: it then never will be."""
        with self._condition:
            self._condition.wait_for(lambda: self._converting != key)
            tensor = self._ready.pop(key, None)
            self._taken.add(key)
            if tensor is None or tensor.dtype != dtype:
                return None
            self.handed += 1
            return tensor

    def claim(self) -> None:
        with self._condition:
            self._claimed = True
            self._condition.notify_all()

    def stop(self) -> None:
        """End the conversion at the next tensor and drop every tensor not taken."""
        with self._condition:
            self._stop_locked()

    def _stop_locked(self) -> None:
        self._stopped = True
        self._ready.clear()
        self._condition.notify_all()

    def held_bytes(self) -> int:
        with self._condition:
            return sum(t.numel() * t.element_size() for t in self._ready.values())

    def wait_converted(self, timeout: float | None = None) -> bool:
        return self._converted.wait(timeout)


_lock = threading.Lock()
_pending: dict[FileIdentity, Prefetch] = {}
_started: weakref.WeakSet[Prefetch] = weakref.WeakSet()  # claimed or not, while they live


def start(path: Path, dtype: torch.dtype) -> Prefetch | None:
    """Begin converting `path` for a load in `dtype`; None where there is nothing to convert
    (see `convertible_keys`) or no such file. Asking again for a file already converting
    changes nothing. Reads the file's header here, the tensors on the prefetch's thread."""
    try:
        identity = FileIdentity.of(path.stat())
        with SafetensorsFile(path) as file:
            keys = convertible_keys(file, dtype)
    except (OSError, CheckpointError):  # the load meets it again and says what is wrong
        return None
    if not keys:
        return None
    with _lock:
        existing = _pending.get(identity)
        if existing is not None and existing.dtype == dtype:
            return existing
        if existing is not None:
            existing.stop()
        prefetch = _pending[identity] = Prefetch(path, dtype, identity, keys)
        _started.add(prefetch)
    return prefetch.start()


@contextmanager
def claimed(file: SafetensorsFile) -> Iterator[Prefetch | None]:
    """Inside, `file.read` uses the prefetch of this file, if any; every other one ends."""
    identity = FileIdentity.of(os.fstat(file.fileno()))
    with _lock:
        mine = _pending.pop(identity, None)
        others = list(_pending.values())
        _pending.clear()
    for other in others:
        other.stop()
    if mine is None:
        yield None
        return
    mine.claim()
    file.prefetched = mine
    try:
        yield mine
    finally:
        file.prefetched = None
        mine.stop()


def stop_all(timeout: float = 10.0) -> None:
    """End every prefetch, claimed or not, drop what no load took, and wait until none
    converts: a process about to exit must not leave a thread inside a torch operation."""
    with _lock:
        _pending.clear()
        started = list(_started)
    for prefetch in started:
        prefetch.stop()
        prefetch.wait_converted(timeout)
