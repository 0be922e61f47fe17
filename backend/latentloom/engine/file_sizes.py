"""Model-file and input-image sizes for the cost walk, read through the engine's folders.

Names resolve exactly as the nodes resolve them (confined to their folders); a name that does
not resolve has no size (validation reports it as model_not_found). A diffusers folder counts
its weight files. Image sizes come from the file header only: no pixels are decoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from latentloom.engine.folders import INPUTS, Folders
from latentloom.models.folders import ModelNotFoundError

WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class FolderFiles:
    folders: Folders

    def size(self, folder: str, name: str) -> int | None:
        try:
            path = self.folders.resolve(folder, name)
        except (ModelNotFoundError, KeyError, OSError):
            return None
        if path.is_file():
            return path.stat().st_size
        return sum(_weight_sizes(path))

    def image_size(self, name: str) -> tuple[int, int] | None:
        try:
            path = self.folders.resolve(INPUTS, name)
            with Image.open(path) as image:
                width, height = image.size
        except (ModelNotFoundError, OSError, Image.DecompressionBombError, ValueError):
            return None
        return int(width), int(height)


def _weight_sizes(folder: Path) -> list[int]:
    sizes = []
    for directory, _, files in os.walk(folder):  # not following links: no loops
        for name in files:
            if name.endswith(WEIGHT_SUFFIXES):
                sizes.append((Path(directory) / name).stat().st_size)
    return sizes
