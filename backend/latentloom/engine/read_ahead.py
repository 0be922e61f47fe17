"""Read a workflow's model files into the page cache while the engine stack still imports.

The first image after a reboot reads its checkpoint from a cold disk: 2 GB took 4.2 s here,
and the engine only starts reading once its ~3-4.5 s of imports are done. Read ahead on a
thread (by the server the moment a job is queued while its worker starts; by `latentloom run`
once the workflow is validated, for the files it does not convert ahead), the same bytes are
in memory by the time Load Checkpoint maps the file, so the disk and the imports overlap
instead of adding up.

Which files: every literal input whose choices are a model folder's files (`DynamicChoices`),
resolved exactly as the loader resolves it (confined to its folder); a diffusers folder
counts its weight files. Nothing here holds the pages: the kernel keeps or drops them as
memory allows, so a read-ahead that turns out useless costs a read, never memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from latentloom.engine.folders import Folders
from latentloom.graph.subgraphs import flatten
from latentloom.graph.workflow import Workflow
from latentloom.models.folders import ModelNotFoundError
from latentloom.node import DynamicChoices
from latentloom.registry import Registry

log = logging.getLogger(__name__)
CHUNK_BYTES = 2**20  # the one buffer is all the memory a read-ahead holds (the server's RSS)
WEIGHT_SUFFIXES = (".safetensors",)


def model_files(workflow: Workflow, registry: Registry, folders: Folders) -> list[Path]:
    """The model files the workflow's nodes name (subgraphs' inner nodes included), in node
    order, each once. The workflow must be valid."""
    found: dict[Path, None] = {}
    for node in flatten(workflow).nodes.values():
        spec = registry.specs.get(node.type)
        if spec is None:
            continue
        for spec_input in spec.inputs:
            value = node.inputs.get(spec_input.name)
            if not isinstance(spec_input.choices, DynamicChoices) or not isinstance(value, str):
                continue
            try:
                path = folders.resolve(spec_input.choices.folder, value)
            except (ModelNotFoundError, KeyError, OSError, ValueError):
                continue  # validation names it; reading ahead just skips it
            found.update(dict.fromkeys(_weight_files(path)))
    return list(found)


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def read_into_page_cache(paths: Iterable[Path]) -> int:
    """Read each file start to end through one small buffer; returns the bytes read."""
    buffer = bytearray(CHUNK_BYTES)
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as file:
                while count := file.readinto(buffer):
                    total += count
        except OSError as error:  # the loader meets it again and reports it properly
            log.debug("read-ahead of %s stopped: %s", path, error)
    return total


class ReadAhead:
    """Finds and reads files into the page cache on daemon threads, each file at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[Path] = set()

    def start(self, find: Callable[[], Iterable[Path]]) -> threading.Thread:
        """`find` runs on the thread too: resolving names touches the disk as well."""
        thread = threading.Thread(
            target=self.read, args=(find,), name="latentloom-read-ahead", daemon=True
        )
        thread.start()
        return thread

    def read(self, find: Callable[[], Iterable[Path]]) -> int:
        """What `start` does, on this thread; returns the bytes read (0: nothing new)."""
        try:
            paths = list(find())
        except Exception as error:  # best effort: the job itself reports a bad workflow
            log.debug("nothing to read ahead: %s", error)
            return 0
        with self._lock:
            fresh = [path for path in paths if path not in self._seen]
            self._seen.update(fresh)
        return read_into_page_cache(fresh)
