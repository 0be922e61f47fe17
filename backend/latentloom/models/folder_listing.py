"""Walking folder trees that may hold symlinks, loops included, and caching what was found.

Users link their model libraries in from other disks, so the walk follows directory symlinks;
it must then survive the trees a careless or hostile folder holds: a link to its own parent,
two links pointing at each other, a link to nowhere. Each directory is identified by its
device and inode once followed, and a directory already walked is not walked again, so a
cycle ends the walk of that branch instead of repeating forever and the work is linear in the
number of distinct directories. A link that cannot be followed (dangling, a loop) is skipped.
Depth and the number of entries are bounded as well, so one enormous tree cannot stall the
listing: what is past the bounds is left out, with a warning.

Listings are cached. A listing records the mtime of every directory it walked (and of the
roots holding them); it stays valid while a `stat` of each still gives the same mtime, which is
far cheaper than listing every file again. A new file changes the mtime of its directory. File
system clocks are coarse (a few milliseconds), so a listing whose directories changed within
the last two seconds is used once and walked again next time, as git treats "racy" entries.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_DEPTH = 32
MAX_ENTRIES = 200_000
SETTLE_NS = 2_000_000_000  # mtimes younger than this at listing time may hide a later change

log = logging.getLogger(__name__)

AcceptFile = Callable[[str], bool]
IsItem = Callable[[Path], bool]  # a directory that is listed as one item (a diffusers folder)


@dataclass(frozen=True)
class WalkRule:
    """What a walk lists: files whose name `accept` takes, and optionally whole folders."""

    accept: AcceptFile
    is_item: IsItem | None = None
    follow_links: bool = True  # into symlinked directories (model libraries on other disks)


@dataclass(frozen=True)
class Listing:
    names: tuple[str, ...]  # relative to their folder, with `/`, sorted, without duplicates
    stamp: tuple[tuple[str, int], ...]  # (directory, mtime_ns) for every directory consulted
    settled: bool  # no stamped directory changed just before the walk


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def walk(folders: Sequence[Path], rule: WalkRule, extra_stamps: Sequence[Path] = ()) -> Listing:
    """Every name `rule` lists below any of `folders`; see the module docstring."""
    started = time.time_ns()
    walker = _Walker(rule)
    for path in extra_stamps:
        walker.stamp.append((str(path), _mtime(str(path))))
    for folder in folders:
        walker.walk(str(folder))
    stamp = tuple((path, -1 if mtime is None else mtime) for path, mtime in walker.stamp)
    settled = all(started - mtime > SETTLE_NS for _, mtime in stamp)
    return Listing(tuple(sorted(walker.names)), stamp, settled)


class _Walker:
    """One walk's state: what was found, which directories were seen, how much is left."""

    def __init__(self, rule: WalkRule) -> None:
        self.rule = rule
        self.names: set[str] = set()
        self.stamp: list[tuple[str, int | None]] = []
        self.seen: set[tuple[int, int]] = set()  # (device, inode) of every directory walked
        self.entries_left = MAX_ENTRIES

    def walk(self, folder: str) -> None:
        pending: list[tuple[str, str, int]] = [(folder, "", 0)]  # (path, name prefix, depth)
        while pending:
            directory, prefix, depth = pending.pop()
            try:
                info = os.stat(directory)
            except OSError:
                continue  # gone, or a link that loops or dangles
            if (info.st_dev, info.st_ino) in self.seen or not stat.S_ISDIR(info.st_mode):
                continue  # a cycle, or a second link to a directory already listed
            self.seen.add((info.st_dev, info.st_ino))
            self.stamp.append((directory, info.st_mtime_ns))
            below = []
            for name, is_directory in self._entries(directory):
                path = os.path.join(directory, name)
                if not is_directory:
                    self.names.add(prefix + name)
                elif self.rule.is_item is not None and self.rule.is_item(Path(path)):
                    self.names.add(prefix + name)
                    self.stamp.append((path, _mtime(path)))
                elif depth + 1 < MAX_DEPTH:
                    below.append((path, f"{prefix}{name}/", depth + 1))
                else:
                    log.warning("not listing %s: folders nest over %d levels deep", path, MAX_DEPTH)
            pending.extend(reversed(below))  # depth first, in name order

    def _entries(self, directory: str) -> list[tuple[str, bool]]:
        """(name, is a directory to enter) for the usable entries of one directory, sorted."""
        found: list[tuple[str, bool]] = []
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    self.entries_left -= 1
                    if self.entries_left < 0:
                        if self.entries_left == -1:
                            log.warning(
                                "stopped listing at %s: over %d entries", directory, MAX_ENTRIES
                            )
                        break
                    if not entry.name.startswith("."):  # hidden, our temporary files among them
                        kind = _kind(entry, self.rule)
                        if kind is not None:
                            found.append((entry.name, kind))
        except OSError:
            return []
        return sorted(found)


def _kind(entry: os.DirEntry[str], rule: WalkRule) -> bool | None:
    """True: a directory to enter; False: a file to list; None: neither."""
    try:
        if entry.is_dir():  # follows links; False for a dangling or looping one
            return True if rule.follow_links or not entry.is_symlink() else None
        if rule.accept(entry.name) and entry.is_file():
            return False
    except OSError:
        pass
    return None


def still_valid(listing: Listing) -> bool:
    """Whether nothing the listing depends on has changed since it was made."""
    if not listing.settled:
        return False
    return all(_mtime(path) == (None if mtime == -1 else mtime) for path, mtime in listing.stamp)


class ListingCache:
    """Listings by key, walked again only when `still_valid` says they may have changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listings: dict[object, Listing] = {}

    def get(self, key: object, make: Callable[[], Listing]) -> tuple[str, ...]:
        with self._lock:
            cached = self._listings.get(key)
        if cached is not None and still_valid(cached):
            return cached.names
        listing = make()
        with self._lock:
            self._listings[key] = listing
            if len(self._listings) > 256:  # many engines in one process (tests): forget the oldest
                del self._listings[next(iter(self._listings))]
        return listing.names

    def clear(self) -> None:
        with self._lock:
            self._listings.clear()


LISTINGS = ListingCache()
