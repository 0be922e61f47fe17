"""Saved workflows: one JSON file per name, written atomically, with meaningful versions kept.

A workflow called "portrait v2" lives in `<folder>/portrait v2.json`. Names are 1..100
letters, digits, spaces and `- _ .`, with no leading dot, no leading or trailing space and no
trailing dot; the `.json` suffix is the store's business, so a name ending in ".json" is
refused rather than doubled or stripped.

Only documents `parse_workflow` accepts are stored, and what is stored is the parsed document
(migrated to the current version), so everything in the store loads. A write goes to a
temporary file in the same folder, is fsynced, and replaces the old file with `os.replace`;
readers see the old document or the new one, never a mix. One lock per folder (shared by
every store on it in this process) serialises writers.

History, in `.history/<name>/`, keeps versions a person would want back, not the last few
seconds of keystrokes: every explicit save (`put(..., explicit=True)`, the REST PUT) is
hard-linked there as `<UTC time>.saved.json`; live edits (`explicit=False`) keep the version
they replace only when the newest kept version is at least `coalesce_seconds` old, so an
hour of editing leaves about one version a minute; `delete` moves the file there as
`<UTC time>.deleted.json`. The newest `keep` edit versions and `keep_saved` saved ones stay.
Renaming never replaces another saved workflow (`WorkflowExists`).
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
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
SAVED_TAG = ".saved"
DELETED_TAG = ".deleted"
STAMP_FORMAT = "%Y%m%dT%H%M%S"
COALESCE_SECONDS = 60.0


class WorkflowNotFound(FileNotFoundError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no saved workflow named {name!r}")


class WorkflowExists(FileExistsError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"a saved workflow named {name!r} already exists; choose another name, "
            "or open it and delete it first"
        )


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
    _locks: ClassVar[dict[Path, threading.RLock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        folder: Path,
        *,
        keep: int = 60,
        keep_saved: int = 100,
        coalesce_seconds: float = COALESCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keep < 1 or keep_saved < 1:
            raise ValueError(f"keep at least 1 version, got keep={keep}, keep_saved={keep_saved}")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder.resolve()
        self.keep, self.keep_saved = keep, keep_saved
        self.coalesce_seconds, self._clock = coalesce_seconds, clock
        with WorkflowStore._locks_guard:
            self.lock = WorkflowStore._locks.setdefault(self.folder, threading.RLock())

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

    def exists(self, name: str) -> bool:
        return self._path(workflow_name(name)).is_file()

    def get(self, name: str) -> dict[str, Any]:
        document = json.loads(self.get_text(name))
        if not isinstance(document, dict):
            raise WorkflowFormatError(f"saved workflow {name!r} is not a JSON object")
        return document

    def get_text(self, name: str) -> str:
        """The saved JSON text, checked to parse (WorkflowFormatError names the file if not)."""
        path = self._path(workflow_name(name))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowNotFound(name) from None
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise WorkflowFormatError(
                f"saved workflow {name!r} is not valid JSON ({error}); fix or delete {path.name}"
            ) from None
        return text

    def put(
        self,
        name: str,
        document: dict[str, Any],
        *,
        explicit: bool = True,
        overwrite: bool = True,
    ) -> WorkflowInfo:
        """Validate and store `document`. An explicit save is kept in the history; a live
        edit keeps the version it replaces at most once per `coalesce_seconds`. With
        `overwrite=False`, WorkflowExists instead of replacing a saved workflow."""
        name = workflow_name(name)
        workflow = parse_workflow(document)  # WorkflowFormatError: nothing is written
        text = json.dumps(workflow.to_json(), indent=2, ensure_ascii=False) + "\n"
        path = self._path(name)
        with self.lock:
            if not overwrite and path.exists():
                raise WorkflowExists(name)
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    file.write(text)
                    file.flush()
                    os.fsync(file.fileno())
                if path.exists() and self._keeps_replaced(name, path):
                    os.link(path, self._history_slot(name, ""))
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            if explicit:
                os.link(path, self._history_slot(name, SAVED_TAG))
            _fsync_folder(self.folder)
            self._prune(name)
            return self._info(name, path)

    def _keeps_replaced(self, name: str, path: Path) -> bool:
        """Whether a write keeps the version it replaces: not when the history holds it
        already (an explicit save), nor when the newest kept version is recent."""
        kept = self.history(name)
        if not kept:
            return True
        newest = kept[-1]
        if os.path.samefile(newest, path):
            return False
        return self._clock() - _stamp_seconds(newest) >= self.coalesce_seconds

    def delete(self, name: str) -> None:
        """Move the workflow into its history, where it stays recoverable."""
        name = workflow_name(name)
        path = self._path(name)
        with self.lock:
            try:
                os.replace(path, self._history_slot(name, DELETED_TAG))
            except FileNotFoundError:
                raise WorkflowNotFound(name) from None
            _fsync_folder(self.folder)
            self._prune(name)

    def rename(self, name: str, new_name: str) -> WorkflowInfo:
        """Give a saved workflow a new name, never replacing another one (WorkflowExists);
        its history moves along when the new name has none."""
        name, new_name = workflow_name(name), workflow_name(new_name)
        source, target = self._path(name), self._path(new_name)
        with self.lock:
            if not source.exists():
                raise WorkflowNotFound(name)
            try:
                os.link(source, target)  # fails if the target exists: no overwrite, no race
            except FileExistsError:
                raise WorkflowExists(new_name) from None
            source.unlink()
            old_history, new_history = self._history_dir(name), self._history_dir(new_name)
            if old_history.is_dir() and not new_history.exists():
                shutil.move(old_history, new_history)
            _fsync_folder(self.folder)
            return self._info(new_name, target)

    def history(self, name: str) -> builtins.list[Path]:
        """Kept versions of `name`, oldest first (saved, edit and deleted versions)."""
        folder = self._history_dir(workflow_name(name))
        return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []

    def _path(self, name: str) -> Path:
        return confined(self.folder, name + SUFFIX)

    def _history_dir(self, name: str) -> Path:
        return self.folder / HISTORY / name

    def _history_slot(self, name: str, tag: str) -> Path:
        """A new, unused file name in the history of `name`; names sort by time. The folders
        are created here and refused if they are links (writes and pruning happen there)."""
        folder = real_subfolder(self.folder, HISTORY, name)
        stamp = int(self._clock() * 1e9)
        while True:
            seconds, nanoseconds = divmod(stamp, 1_000_000_000)
            moment = datetime.fromtimestamp(seconds, UTC).strftime(STAMP_FORMAT)
            slot = folder / f"{moment}.{nanoseconds:09d}Z{tag}{SUFFIX}"
            if not any(folder.glob(f"{moment}.{nanoseconds:09d}Z*")):
                return slot
            stamp += 1

    def _prune(self, name: str) -> None:
        real_subfolder(self.folder, HISTORY, name)  # never delete through a planted link
        edits: builtins.list[Path] = []
        saved: builtins.list[Path] = []
        for path in self.history(name):
            (
                saved if path.name.endswith((SAVED_TAG + SUFFIX, DELETED_TAG + SUFFIX)) else edits
            ).append(path)
        for old in [*edits[: -self.keep], *saved[: -self.keep_saved]]:
            old.unlink(missing_ok=True)

    @staticmethod
    def _info(name: str, path: Path) -> WorkflowInfo:
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        return WorkflowInfo(name=name, modified=modified, size=stat.st_size)


def _stamp_seconds(path: Path) -> float:
    """The time a history file's name records (UTC)."""
    moment, _, rest = path.name.partition(".")
    nanoseconds = int(rest[:9])
    when = datetime.strptime(moment, STAMP_FORMAT).replace(tzinfo=UTC)
    return when.timestamp() + nanoseconds / 1e9


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
