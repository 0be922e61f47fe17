"""Saved workflows: one JSON file per name, written atomically, with earlier versions kept.

A workflow called "portrait v2" lives in `<folder>/portrait v2.json`. Names are 1..100
letters, digits, spaces and `- _ .`, with no leading dot, no leading or trailing space and no
trailing dot; the `.json` suffix is the store's business, so a name ending in ".json" is
refused rather than doubled or stripped.

Only documents `parse_workflow` accepts are stored, and what is stored is the parsed document
(migrated to the current version), so everything in the store loads. A write goes to a
temporary file in the same folder, is fsynced, and replaces the old file with `os.replace`;
readers see the old document or the new one, never a mix. Before that, the old version is
hard-linked into `.history/<name>/<UTC time>.json`, and `delete` moves the file there too, so
nothing is destroyed: the last `keep` versions of each name stay recoverable by hand. One lock
per folder (shared by every store on it in this process) serialises writers.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from latentloom.server.paths import PathRefused, confined, real_subfolder, safe_name

MAX_NAME_LENGTH = 100
NAME_PUNCTUATION = frozenset(" -_.")
HISTORY = ".history"
SUFFIX = ".json"


class WorkflowNotFound(FileNotFoundError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no saved workflow named {name!r}")


@dataclass(frozen=True)
class WorkflowInfo:
    name: str
    modified: datetime  # UTC
    size: int  # bytes on disk


def workflow_name(name: str) -> str:
    """`name` if it follows the naming rule in the module docstring, else PathRefused."""
    if name.lower().endswith(SUFFIX):
        raise PathRefused(name, "leave out the .json suffix; the store adds it")
    name = safe_name(name, max_length=MAX_NAME_LENGTH)
    odd = sorted({char for char in name if not char.isalnum() and char not in NAME_PUNCTUATION})
    if odd:
        raise PathRefused(
            name,
            f"workflow names use letters, digits, spaces and - _ . only; found {''.join(odd)!r}",
        )
    return name


class WorkflowStore:
    _locks: ClassVar[dict[Path, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, folder: Path, *, keep: int = 20) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 version, got {keep}")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder.resolve()
        self.keep = keep
        with WorkflowStore._locks_guard:
            self._lock = WorkflowStore._locks.setdefault(self.folder, threading.Lock())

    def list(self) -> list[WorkflowInfo]:
        """Every saved workflow, by name; files whose names break the rule are skipped."""
        infos = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if not path.is_file():
                continue
            try:
                infos.append(self._info(workflow_name(path.stem), self._path(path.stem)))
            except (PathRefused, FileNotFoundError):
                continue
        return infos

    def get(self, name: str) -> dict[str, Any]:
        path = self._path(workflow_name(name))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowNotFound(name) from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise WorkflowFormatError(
                f"saved workflow {name!r} is not valid JSON ({error}); fix or delete {path.name}"
            ) from None
        if not isinstance(document, dict):
            raise WorkflowFormatError(f"saved workflow {name!r} is not a JSON object")
        return document

    def put(self, name: str, document: dict[str, Any]) -> WorkflowInfo:
        """Validate and store `document`; the version it replaces goes to the history."""
        name = workflow_name(name)
        workflow = parse_workflow(document)  # WorkflowFormatError: nothing is written
        text = json.dumps(workflow.to_json(), indent=2, ensure_ascii=False) + "\n"
        path = self._path(name)
        with self._lock:
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    file.write(text)
                    file.flush()
                    os.fsync(file.fileno())
                if path.exists():
                    os.link(path, self._history_slot(name))
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_folder(self.folder)
            self._prune(name)
            return self._info(name, path)

    def delete(self, name: str) -> None:
        """Move the workflow into its history; the newest `keep` versions stay recoverable."""
        name = workflow_name(name)
        path = self._path(name)
        with self._lock:
            try:
                os.replace(path, self._history_slot(name))
            except FileNotFoundError:
                raise WorkflowNotFound(name) from None
            _fsync_folder(self.folder)
            self._prune(name)

    def history(self, name: str) -> builtins.list[Path]:
        """Earlier versions of `name`, oldest first."""
        folder = self.folder / HISTORY / workflow_name(name)
        return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []

    def _path(self, name: str) -> Path:
        return confined(self.folder, name + SUFFIX)

    def _history_slot(self, name: str) -> Path:
        """A new, unused file name in the history of `name`; names sort by time."""
        folder = real_subfolder(self.folder, HISTORY, name)  # a planted link: PathRefused
        stamp = time.time_ns()
        while True:
            seconds, nanoseconds = divmod(stamp, 1_000_000_000)
            moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%S")
            slot = folder / f"{moment}.{nanoseconds:09d}Z{SUFFIX}"
            if not slot.exists():
                return slot
            stamp += 1

    def _prune(self, name: str) -> None:
        for old in self.history(name)[: -self.keep]:
            old.unlink(missing_ok=True)

    @staticmethod
    def _info(name: str, path: Path) -> WorkflowInfo:
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return WorkflowInfo(name=name, modified=modified, size=stat.st_size)


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); folders cannot be opened this way on Windows."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
