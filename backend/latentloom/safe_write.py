"""Writing files that a planted symlink cannot redirect, and sweeping up after a crash.

Each file we write appears by `os.replace` of a temporary file created in the same folder
with `O_CREAT | O_EXCL`. Neither step follows a symlink at the file's own name: exclusive
creation fails on any existing name, a link included, and a rename replaces a link instead of
writing where it points. The folder is checked when the file is written: it must be a real
folder, so a planted `output/previews -> /elsewhere` link is refused with its name, not
followed. (Only the folder's own entry is checked: callers pass folders under a root that is
already resolved, such as the engine's output folder.)

Output names are reserved before they are written (`reserve_new`): the first free name is
created empty and exclusively, so two saves never take the same name and a planted link
with the next name is skipped. Readers see no half-written file under a final name: only an
empty reservation, until the finished file replaces it.

Temporary names start with `.` and end in `.partial` (the workflow store's in `.tmp`), so
`sweep_temp_files` can delete what a crash left behind; at start-up it also removes empty
reservations from the output folder.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".partial"
SWEPT_SUFFIXES = (".partial", ".tmp")  # after a leading dot; .tmp is the workflow store's
LEGACY_TEMP_SUFFIXES = (".safetensors.partial", ".latent.partial")  # written without a dot
OUTPUT_SUFFIXES = (".png", ".webp", ".gif", ".jpg", ".jpeg", ".latent")
MAX_RESERVE_TRIES = 100_000
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

log = logging.getLogger(__name__)


class WriteRefused(Exception):
    """A file that was not written because of where it would have gone."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"refused to write in {path}: {reason}")


def writable_folder(folder: Path) -> Path:
    """`folder`, created if missing; WriteRefused if its entry is a symlink or not a folder."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        raise WriteRefused(
            folder,
            f"it is a symlink (to {os.readlink(folder)}); files are written only into real "
            "folders, so remove the link or replace it with a folder",
        )
    if not stat.S_ISDIR(info.st_mode):
        raise WriteRefused(folder, "it is not a folder; move that file away")
    return folder


def reserve_new(folder: Path, names: Iterable[str]) -> Path:
    """The first of `names` that could be created (empty, exclusively) in `folder`."""
    folder = writable_folder(folder)
    tries = 0
    for name in itertools.islice(names, MAX_RESERVE_TRIES):
        tries += 1
        path = folder / name
        try:
            os.close(os.open(path, _NEW_FILE, 0o666))
        except FileExistsError:  # taken, or a link planted under that name: never followed
            continue
        return path
    raise WriteRefused(folder, f"no free file name after {tries:,} tries")


def _new_temporary(folder: Path, name: str) -> tuple[int, Path]:
    for _ in range(100):
        temporary = folder / f".{name[:100]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            return os.open(temporary, _NEW_FILE, 0o666), temporary
        except FileExistsError:
            continue
    raise WriteRefused(folder, "could not create a temporary file")


def atomic_write(
    path: Path,
    write: Callable[[BinaryIO], None],
    *,
    durable: bool = False,
    real_folder: bool = True,
) -> None:
    """Write `path` through `write(file)` under a temporary name, then rename it into place.

    An existing file or link at `path` is replaced, never written through. With `real_folder`
    (for files in our data folder) the folder must be a real one (`writable_folder`); without
    it, any existing folder the caller chose will do. `durable` fsyncs before the rename.
    """
    folder = writable_folder(path.parent) if real_folder else path.parent
    descriptor, temporary = _new_temporary(folder, path.name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our temporary names (see the module docstring)."""
    return (name.startswith(".") and name.endswith(SWEPT_SUFFIXES)) or name.endswith(
        LEGACY_TEMP_SUFFIXES
    )


def sweep_temp_files(
    data_dir: Path, output_dir: Path | None = None, *, older_than_s: float = 60.0
) -> list[Path]:
    """Delete temporary files under `data_dir` and empty outputs under `output_dir`.

    Meant for start-up, when nothing of ours is writing. Only files untouched for
    `older_than_s` go, in case another process shares the folder. Links are removed as links,
    never followed, and linked folders are not entered. Returns what was deleted.
    """
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    roots = [data_dir]
    if output_dir is not None and data_dir not in output_dir.parents:
        roots.append(output_dir)
    for root in roots:
        for directory, _, files in os.walk(root):
            here = Path(directory)
            in_output = output_dir is not None and (
                here == output_dir or output_dir in here.parents
            )
            for name in files:
                path = here / name
                try:
                    info = os.lstat(path)
                    if info.st_mtime < cutoff and _stale(name, info, in_output):
                        path.unlink()
                        removed.append(path)
                except OSError:
                    continue  # gone already, or not ours to delete
    if removed:
        log.info("removed %d files left by an interrupted write: %s", len(removed), removed[:10])
    return removed


def _stale(name: str, info: os.stat_result, is_output: bool) -> bool:
    if is_temporary(name):
        return True
    return (
        is_output
        and stat.S_ISREG(info.st_mode)
        and info.st_size == 0
        and name.lower().endswith(OUTPUT_SUFFIXES)
    )
