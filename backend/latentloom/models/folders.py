"""Model folders: where checkpoints, LoRAs and VAEs are found, and nowhere else.

Users point us at the folders they already have. A root may follow the ComfyUI layout
(`checkpoints/`, `loras/`, `vae/`, `embeddings/`, `unet/` or `diffusion_models/`, `clip/` or
`text_encoders/`) or AUTOMATIC1111's (`Stable-diffusion/`, `Lora/`, `VAE/`, and `embeddings/`,
which A1111 keeps beside its `models/` folder: add the web UI's folder as a root too).

A workflow may name only what our own listing of a kind's folders holds. The listing follows
symlinks, so a model file or a whole library linked in from another disk is usable, and it
detects loops (`folder_listing.py`), so a folder that links to itself is listed anyway. Names
are relative with `/`; `..`, absolute names and backslashes are refused before the listing is
consulted. Listings are cached and walked again only when a directory in them changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from latentloom.models.folder_listing import LISTINGS, WalkRule, walk

SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints", "Stable-diffusion"),
    "loras": ("loras", "Lora"),
    "vae": ("vae", "VAE"),
    "embeddings": ("embeddings",),
    "unet": ("unet", "diffusion_models"),
    "clip": ("clip", "text_encoders"),
    "clip_vision": ("clip_vision",),
    "ipadapter": ("ipadapter",),
    "upscale_models": ("upscale_models", "ESRGAN", "RealESRGAN"),
    "controlnet": ("controlnet", "t2i_adapter", "ControlNet"),
}
WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class ModelNotFoundError(Exception):
    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        listed = ", ".join(available[:20]) if available else "none: the folders are empty"
        super().__init__(f"{kind} file {name!r} not found; available: {listed}")


def _is_model_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES + PICKLE_SUFFIXES)


def _is_diffusers_folder(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def _is_diffusers_vae_folder(path: Path) -> bool:
    """A diffusers AutoencoderKL folder: config.json beside its safetensors weights."""
    return (path / "config.json").is_file() and any(path.glob("diffusion_pytorch_model*"))


RULES: dict[str, WalkRule] = {
    "checkpoints": WalkRule(_is_model_file, is_item=_is_diffusers_folder),
    "loras": WalkRule(_is_model_file),
    "vae": WalkRule(_is_model_file, is_item=_is_diffusers_vae_folder),
    "embeddings": WalkRule(_is_model_file),
    "unet": WalkRule(_is_model_file),
    "clip": WalkRule(_is_model_file),
    "clip_vision": WalkRule(_is_model_file),
    "ipadapter": WalkRule(_is_model_file),
    "upscale_models": WalkRule(_is_model_file),
    # ControlNets and T2I-Adapters; a diffusers folder is config.json + weights, like a VAE's.
    "controlnet": WalkRule(_is_model_file, is_item=_is_diffusers_vae_folder),
}


def _absolute(root: Path | str) -> Path:
    """The root with links resolved where they resolve (a looping root is kept as given)."""
    return Path(os.path.realpath(Path(root).expanduser()))


@dataclass(frozen=True)
class ModelFolders:
    roots: tuple[Path, ...]

    @classmethod
    def of(cls, roots: Iterable[Path | str]) -> ModelFolders:
        return cls(tuple(_absolute(root) for root in roots))

    def folders(self, kind: str) -> list[Path]:
        return [
            root / sub for root in self.roots for sub in SUBFOLDERS[kind] if (root / sub).is_dir()
        ]

    def list(self, kind: str) -> list[str]:
        """Names (relative, with `/`) of the usable files of a kind, sorted."""
        rule = RULES[kind]
        names = LISTINGS.get(
            (self.roots, kind), lambda: walk(self.folders(kind), rule, extra_stamps=self.roots)
        )
        return list(names)

    def refresh(self) -> None:
        """Forget cached listings (they also refresh themselves when a folder changes)."""
        LISTINGS.clear()

    def resolve(self, kind: str, name: str) -> Path:
        """The file (or diffusers folder) a listed name refers to; ModelNotFoundError otherwise.

        The path is returned as listed, links unresolved: a name's link may point anywhere,
        since only names our listing produced are accepted.
        """
        if not _plain_relative(name) or name not in self.list(kind):
            raise ModelNotFoundError(kind, name, self.list(kind))
        is_item = RULES[kind].is_item
        for folder in self.folders(kind):
            candidate = folder / name
            if candidate.is_file() or (candidate.is_dir() and is_item and is_item(candidate)):
                return candidate
        raise ModelNotFoundError(kind, name, self.list(kind))

    def fingerprint(self, kind: str, name: str) -> str:
        """Changes when the file changes, so cached outputs of an edited file are not reused."""
        path = self.resolve(kind, name)
        if path.is_dir():  # a diffusers pipeline, or a VAE folder, by its index or config
            index = path / "model_index.json"
            stat = (index if index.is_file() else path / "config.json").stat()
        else:
            stat = path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"


def _plain_relative(name: str) -> bool:
    """A relative name with `/` separators and no `..`, `.` or empty parts."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))
