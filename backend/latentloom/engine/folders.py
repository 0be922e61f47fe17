"""The folders a workflow may name files in: model folders and the input-image folder.

ENUM inputs with `DynamicChoices(kind)` list their choices here, validation checks names
here, and cache keys fingerprint files here. Every name resolves inside its folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latentloom.models.folders import ModelFolders, ModelNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
INPUTS = "inputs"
INPUT_LATENTS = "input_latents"  # `.latent` files in the input folder (Load Latent)
_INPUT_SUFFIXES = {INPUTS: IMAGE_SUFFIXES, INPUT_LATENTS: (".latent",)}


@dataclass(frozen=True)
class Folders:
    models: ModelFolders
    input_dir: Path

    def list(self, kind: str) -> list[str]:
        if kind not in _INPUT_SUFFIXES:
            return self.models.list(kind)
        if not self.input_dir.is_dir():
            return []
        return sorted(
            path.relative_to(self.input_dir).as_posix()
            for path in self.input_dir.rglob("*")
            if path.suffix.lower() in _INPUT_SUFFIXES[kind]
            and _inside(path.resolve(), self.input_dir.resolve())
        )

    def resolve(self, kind: str, name: str) -> Path:
        if kind not in _INPUT_SUFFIXES:
            return self.models.resolve(kind, name)
        root = self.input_dir.resolve()
        candidate = (root / name).resolve()
        if "\\" in name or not _inside(candidate, root) or not candidate.is_file():
            raise ModelNotFoundError(kind, name, self.list(kind))
        return candidate

    def fingerprint(self, kind: str, name: str) -> str:
        if kind not in _INPUT_SUFFIXES:
            return self.models.fingerprint(kind, name)
        stat = self.resolve(kind, name).stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents
