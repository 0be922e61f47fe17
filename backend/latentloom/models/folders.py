"""Model folders: where checkpoints, LoRAs and VAEs are found, and nowhere else.

Users point us at the folders they already have. A root may follow the ComfyUI layout
(`checkpoints/`, `loras/`, `vae/`) or AUTOMATIC1111's (`Stable-diffusion/`, `Lora/`, `VAE/`).
Every name a workflow gives is resolved (symlinks included) and must stay inside one of the
kind's folders, so a workflow can never reach a file elsewhere on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints", "Stable-diffusion"),
    "loras": ("loras", "Lora"),
    "vae": ("vae", "VAE"),
}
WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class ModelNotFoundError(Exception):
    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        listed = ", ".join(available[:20]) if available else "none: the folders are empty"
        super().__init__(f"{kind} file {name!r} not found; available: {listed}")


@dataclass(frozen=True)
class ModelFolders:
    roots: tuple[Path, ...]

    @classmethod
    def of(cls, roots: Iterable[Path | str]) -> ModelFolders:
        return cls(tuple(Path(root).expanduser().resolve() for root in roots))

    def folders(self, kind: str) -> list[Path]:
        return [
            root / sub for root in self.roots for sub in SUBFOLDERS[kind] if (root / sub).is_dir()
        ]

    def list(self, kind: str) -> list[str]:
        """Names (relative, with `/`) of the usable files of a kind, sorted."""
        names: set[str] = set()
        for folder in self.folders(kind):
            for path in _walk(folder, kind):
                if _inside(path.resolve(), folder.resolve()):
                    names.add(path.relative_to(folder).as_posix())
        return sorted(names)

    def resolve(self, kind: str, name: str) -> Path:
        """The file a name refers to, confined to the kind's folders."""
        if "\\" in name or name.startswith("/") or ".." in Path(name).parts:
            raise ModelNotFoundError(kind, name, self.list(kind))
        for folder in self.folders(kind):
            candidate = (folder / name).resolve()
            if _inside(candidate, folder.resolve()) and candidate.exists():
                return candidate
        raise ModelNotFoundError(kind, name, self.list(kind))

    def fingerprint(self, kind: str, name: str) -> str:
        """Changes when the file changes, so cached outputs of an edited file are not reused."""
        path = self.resolve(kind, name)
        stat = (path / "model_index.json").stat() if path.is_dir() else path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"


def _walk(folder: Path, kind: str) -> Iterator[Path]:
    """Model files below a folder; a diffusers model folder counts as one checkpoint."""
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        here = Path(directory)
        if kind == "checkpoints" and (here / "model_index.json").is_file() and here != folder:
            subdirectories.clear()
            yield here
            continue
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(WEIGHT_SUFFIXES + PICKLE_SUFFIXES):
                yield here / name


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder.resolve() in path.parents
