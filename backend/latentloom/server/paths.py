"""File names and paths that arrive from clients, checked before they touch the disk.

Two tools. `safe_name` judges one file name a client wants to create (an upload, a saved
workflow). It refuses rather than rewrites: a name that would need rewriting is either an
attack or a mistake, and a silently different name surprises the person who chose it. The
only change it makes is Unicode NFC normalisation, which does not change what a name reads as.

`confined` turns a relative path from a URL into a file under a root folder. It decodes
percent-escapes once (a client may have encoded the path one more time than the framework
decoded it), refuses anything that could step outside, and then resolves symlinks and checks
the result is still inside. A file whose real name holds a `%XX` escape is therefore not
reachable through `confined`; `safe_name` refuses such names, and the engine never writes them.

`real_subfolder` makes the folders the server writes into under a root, refusing any that a
planted symlink would redirect.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection
from pathlib import Path
from urllib.parse import unquote

from latentloom.safe_write import WriteRefused, writable_folder

# Characters Windows forbids in names; refused everywhere so a folder copied there still works.
WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
DRIVE = re.compile(r"^[A-Za-z]:")
MAX_NAME_LENGTH = 128


class PathRefused(ValueError):
    """A client-supplied name or path that will not be used, and why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"refused {path!r}: {reason}")


def _unsafe_character(text: str) -> str | None:
    """Why `text` holds a character no name or path may hold, or None."""
    for char in text:
        if char == "\x00":
            return "it contains a NUL byte"
        if unicodedata.category(char) in ("Cc", "Cf"):
            # Cf covers invisible format characters such as U+202E, which can make
            # "gnp.exe" display as "exe.png".
            return f"it contains the control character U+{ord(char):04X}"
    return None


def safe_name(
    name: str,
    *,
    allowed_suffixes: Collection[str] | None = None,
    max_length: int = MAX_NAME_LENGTH,
) -> str:
    """`name` (NFC-normalised) if it is a plain file name, else PathRefused.

    A plain name is 1..max_length characters with no path separators, no control or
    invisible format characters, none of `<>:"|?*`, no `%XX` escapes, no leading dot (hidden
    files, `..`), no leading or trailing space and no trailing dot (Windows drops them, so two
    names would mean one file), and is not a Windows device name (CON, NUL, COM1...).
    With `allowed_suffixes` (lower case, with the dot) its suffix must be one of them,
    compared case-insensitively.
    """
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise PathRefused(name, "the name is empty")
    if len(name) > max_length:
        raise PathRefused(
            name, f"the name is {len(name)} characters long; the limit is {max_length}"
        )
    problem = _unsafe_character(name)
    if problem is None and ("/" in name or "\\" in name):
        problem = "a file name may not contain '/' or '\\'; pick a name without folders"
    if problem is None and WINDOWS_FORBIDDEN.intersection(name):
        problem = 'a file name may not contain any of < > : " | ? *'
    if problem is None and PERCENT_ESCAPE.search(name):
        problem = "it contains a %XX escape; send the name decoded"
    if problem is None and name.startswith("."):
        problem = "a file name may not start with '.'"
    if problem is None and (name != name.strip(" ") or name.endswith(".")):
        problem = "a file name may not start or end with a space, or end with '.'"
    if problem is None and name.split(".")[0].upper() in WINDOWS_DEVICES:
        problem = f"{name.split('.')[0]!r} is a reserved device name on Windows"
    if problem is not None:
        raise PathRefused(name, problem)
    if allowed_suffixes is not None:
        suffix = Path(name).suffix.lower()
        if suffix not in allowed_suffixes:
            choices = ", ".join(sorted(allowed_suffixes))
            raise PathRefused(
                name, f"the name must end in one of {choices}; got {suffix or 'no suffix'!r}"
            )
    return name


def _decode_once(relative: str) -> str:
    """`relative` with one layer of %XX escapes decoded; refuses escapes that hide structure."""
    if "%" not in relative:
        return relative
    for escape in PERCENT_ESCAPE.findall(relative):
        if escape.lower() in ("%2f", "%5c", "%00"):
            raise PathRefused(relative, f"the escape {escape} encodes a separator or NUL")
    try:
        decoded = unquote(relative, errors="strict")
    except UnicodeDecodeError:
        raise PathRefused(relative, "its %XX escapes are not valid UTF-8") from None
    if PERCENT_ESCAPE.search(decoded):
        raise PathRefused(relative, "it is percent-encoded twice")
    return decoded


def confined(root: Path, relative: str) -> Path:
    """The real path of `relative` under `root`, refusing anything that would leave it.

    The file need not exist; symlinks that do exist are followed, and one that points
    outside `root` is refused. The result may still change on disk after the check (a
    symlink swapped in later); the folders this guards are the user's own, not shared.
    """
    decoded = _decode_once(relative)
    problem = _unsafe_character(decoded)
    if problem is None and "\\" in decoded:
        problem = "backslashes are not path separators here; use '/'"
    if problem is None and (decoded.startswith("/") or DRIVE.match(decoded)):
        problem = "absolute paths are not allowed; give a path relative to the folder"
    parts = decoded.split("/")
    if problem is None and not decoded:
        problem = "the path is empty"
    elif problem is None and ".." in parts:
        problem = "'..' may not appear in a path"
    elif problem is None and any(part in ("", ".") for part in parts):
        problem = "empty or '.' path segments are not allowed"
    if problem is not None:
        raise PathRefused(relative, problem)
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root.joinpath(*parts)))  # a loop: returned, not raised
    if real_root not in candidate.parents:
        raise PathRefused(relative, "it resolves outside its folder (a symlink points out)")
    return candidate


def real_subfolder(root: Path, *parts: str) -> Path:
    """`root/part/...`, each part created if missing and refused if it is a symlink.

    For folders the server writes into and later deletes from (a workflow's history): a link
    planted there would send those writes and deletions elsewhere. Each part must be a plain
    folder name; PathRefused names the first part that is a link or not a folder.
    """
    folder = root
    for index, part in enumerate(parts):
        if part in ("", ".", "..") or "/" in part or "\\" in part:
            raise PathRefused(part, "a folder name may not be empty, '.', '..' or hold a separator")
        folder = folder / part
        try:
            writable_folder(folder)
        except WriteRefused as refusal:
            raise PathRefused("/".join(parts[: index + 1]), refusal.reason) from None
    return folder
