"""The folders a workflow may name files in: model folders and the input-image folder.

ENUM inputs with `DynamicChoices(kind)` list their choices here, validation checks names
here, and cache keys fingerprint files here.

Model files may be links to anywhere (see `models/folders.py`). The input folder is ours (the
server writes uploads there), so its files must really be inside it: a symlink that points out
of it, dangles or loops is not listed, and a name that does not resolve to a regular file
inside it is refused as not found, which validation reports like any unknown file name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from latentloom.models.folder_listing import LISTINGS, Listing, WalkRule, walk
from latentloom.models.folders import ModelFolders, ModelNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
INPUTS = "inputs"
INPUT_LATENTS = "input_latents"  # `.latent` files in the input folder (Load Latent)
INPUT_POSES = "input_poses"  # OpenPose `.json` files in the input folder (Load Pose)
_INPUT_SUFFIXES = {INPUTS: IMAGE_SUFFIXES, INPUT_LATENTS: (".latent",), INPUT_POSES: (".json",)}


def _suffix_rule(suffixes: tuple[str, ...]) -> WalkRule:
    """Input files by suffix; symlinked folders are not entered (their files would be outside)."""
    return WalkRule(lambda name: name.lower().endswith(suffixes), follow_links=False)


_INPUT_RULES = {kind: _suffix_rule(suffixes) for kind, suffixes in _INPUT_SUFFIXES.items()}


@dataclass(frozen=True)
class Folders:
    models: ModelFolders
    input_dir: Path

    def list(self, kind: str) -> list[str]:
        if kind not in _INPUT_SUFFIXES:
            return self.models.list(kind)
        return list(LISTINGS.get((self.input_dir, kind), lambda: self._walk_inputs(kind)))

    def _walk_inputs(self, kind: str) -> Listing:
        listing = walk([self.input_dir], _INPUT_RULES[kind])
        inside = tuple(name for name in listing.names if self._inside(name) is not None)
        return dataclasses.replace(listing, names=inside)

    def resolve(self, kind: str, name: str) -> Path:
        if kind not in _INPUT_SUFFIXES:
            return self.models.resolve(kind, name)
        path = self._inside(name) if name.lower().endswith(_INPUT_SUFFIXES[kind]) else None
        if path is None:
            raise ModelNotFoundError(kind, name, self.list(kind))
        return path

    def fingerprint(self, kind: str, name: str) -> str:
        if kind not in _INPUT_SUFFIXES:
            return self.models.fingerprint(kind, name)
        stat = self.resolve(kind, name).stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def _inside(self, name: str) -> Path | None:
        """The real path of an input file if it is a regular file inside the folder."""
        if not name or "\\" in name or "\x00" in name or name.startswith("/"):
            return None
        root = os.path.realpath(self.input_dir)
        real = os.path.realpath(os.path.join(root, name))  # never raises, even on a loop
        if os.path.commonpath([root, real]) != root or real == root or not os.path.isfile(real):
            return None
        return Path(real)
