"""The server's side of remote outputs: a worker's files, written once into the output folder.

A Ray worker sends a succeeded run's files as bytes (`ray_actor.JobFiles`), named as its
private staging folder named them. Workers on different machines all number from 1, so each
file gets the next free name for its prefix here (`prefix_00001.png` becomes
`prefix_00007.png` when six are taken), through the same reserving `next_free_path` the save
nodes use, and the run's reports are rewritten to the names written. The map from a worker's
names to ours outlives the job, because a cached re-run on that worker reports the same
names without sending the files again.

Fencing: the dispatcher calls `write` only for the attempt the ledger still has running, and
`discard` when the ledger then refuses the outcome (a user cancelled it meanwhile), so a job's
files land once, from the attempt that counted. Paths are confined to the output folder.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

_NUMBERED = re.compile(r"^(?P<prefix>.+)_(?P<counter>\d{5})(?P<suffix>\.[^/]+)$")


class OutputRefused(ValueError):
    def __init__(self, worker: str, name: str) -> None:
        super().__init__(
            f"worker {worker} sent an output file named {name!r}: expected a path inside the "
            "output folder (no '..', not absolute); the file was not written"
        )


class RemoteOutputs:
    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self._names: dict[tuple[str, str], str] = {}  # (worker, its name) -> ours
        self._lock = threading.Lock()

    def write(
        self, worker: str, files: Mapping[str, bytes], reports: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Path]]:
        """Write `files` under free names; the reports with their entries renamed, and the
        paths written (to `discard` should the outcome be refused)."""
        from latentloom.images import next_free_path

        written: list[Path] = []
        try:
            for name, data in files.items():
                relative = PurePosixPath(name)
                if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                    raise OutputRefused(worker, name)
                folder = self.output_dir.joinpath(*relative.parent.parts)
                match = _NUMBERED.match(relative.name)
                prefix, suffix = (
                    (match["prefix"], match["suffix"])
                    if match
                    else (relative.stem, relative.suffix)
                )
                path = next_free_path(folder, prefix, suffix)  # reserved, empty
                written.append(path)
                path.write_bytes(data)
                with self._lock:
                    self._names[(worker, name)] = path.relative_to(self.output_dir).as_posix()
        except BaseException:
            self.discard(written)
            raise
        with self._lock:
            names = {ours: theirs for (w, ours), theirs in self._names.items() if w == worker}
        return {node: _renamed(report, names) for node, report in reports.items()}, written

    def forget(self, worker: str) -> None:
        """A worker is gone: its cache (and so its names) went with it."""
        with self._lock:
            for key in [key for key in self._names if key[0] == worker]:
                del self._names[key]

    @staticmethod
    def discard(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)


def _renamed(value: Any, names: Mapping[str, str]) -> Any:
    """`value` with every {"filename", "subfolder"} entry that a worker named renamed."""
    if isinstance(value, Mapping):
        entry = {key: _renamed(item, names) for key, item in value.items()}
        filename, subfolder = entry.get("filename"), entry.get("subfolder")
        if isinstance(filename, str) and isinstance(subfolder, str):
            theirs = (PurePosixPath(subfolder) / filename).as_posix() if subfolder else filename
            ours = names.get(theirs)
            if ours is not None:
                path = PurePosixPath(ours)
                entry["filename"] = path.name
                entry["subfolder"] = path.parent.as_posix().strip(".")
        return entry
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    return value
