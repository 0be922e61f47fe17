"""`.latent` files as ComfyUI writes and reads them (its Save Latent / Load Latent nodes).

The format is a safetensors file with two tensors: `latent_tensor`, the latent batch
[B, C, H, W] in float32, and `latent_format_version_0`, an empty float32 tensor that only marks
the format version. ComfyUI's LATENT values, and so its files, hold *unscaled* latents (the
VAE's own output); its sampler multiplies by the VAE scaling factor (0.18215 for SD 1.x/2.x,
0.13025 for SDXL) on the way in and divides on the way out. Our Latent holds the *scaled*
latents, so writing divides by the family's factor and reading multiplies by it.

A file without the marker predates it: ComfyUI stored scaled SD 1.x latents then, and reads
them as `latent_tensor * (1 / 0.18215)`; so do we.

Files are read with our validating safetensors reader (nothing is unpickled, a damaged header is
refused with its problems named) and written atomically with our writer, into a real folder
(never through a planted symlink). Metadata is optional; we record the latent's family
(`latentloom_family`) so a file we wrote comes back at the right scale even without a model to
say which, and the workflow that made it (`latentloom`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentloom.models.errors import CheckpointError
from latentloom.models.family import FAMILIES, SD15, Family
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors
from latentloom.safe_write import writable_folder

SUFFIX = ".latent"
LATENT_KEY = "latent_tensor"
FORMAT_MARKER = "latent_format_version_0"
LEGACY_MULTIPLIER = 1.0 / 0.18215  # what ComfyUI applies to files without the marker
FAMILY_METADATA = "latentloom_family"
WORKFLOW_METADATA = "latentloom"


class LatentFileError(ValueError):
    """A `.latent` file that is not one: the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class LatentFile:
    """A `.latent` file's contents, in ComfyUI's (unscaled) latent space."""

    samples: Tensor  # float32 [B, C, H, W], unscaled
    family: Family | None  # recorded by Latentloom; None in ComfyUI's files
    legacy: bool  # no format marker: stored scaled, converted on reading


def write_latent_file(
    path: Path,
    samples: Tensor,
    family: Family | None,
    workflow: Mapping[str, Any] | None = None,
) -> None:
    """Write our (scaled) `samples` as a ComfyUI `.latent` file; family None means SD 1.x.

    The folder must be a real folder, not a symlink (WriteRefused names it), and the file
    appears by a rename, so a link at its name is replaced, never written through.
    """
    writable_folder(path.parent)
    unscaled = samples.detach().to("cpu", torch.float32) / (family or SD15).vae_scaling_factor
    metadata: dict[str, str] = {FAMILY_METADATA: (family or SD15).name}
    if workflow:
        metadata[WORKFLOW_METADATA] = json.dumps(workflow, separators=(",", ":"))
    tensors = {LATENT_KEY: unscaled.contiguous(), FORMAT_MARKER: torch.tensor([])}
    save_tensors(path, tensors, metadata)


def read_latent_file(path: Path) -> LatentFile:
    """Read a `.latent` file (ours or ComfyUI's); malformed files raise LatentFileError."""
    try:
        with SafetensorsFile(path) as file:
            if LATENT_KEY not in file:
                found = ", ".join(file.keys()) or "no tensors"
                raise LatentFileError(path, f"no '{LATENT_KEY}' tensor (found: {found})")
            shape = file.shape(LATENT_KEY)
            if len(shape) != 4:
                raise LatentFileError(
                    path, f"'{LATENT_KEY}' has shape {list(shape)}; expected [B, C, H, W]"
                )
            samples = file.read(LATENT_KEY, dtype=torch.float32)
            legacy = FORMAT_MARKER not in file
            family = FAMILIES.get(file.metadata.get(FAMILY_METADATA, ""))
    except CheckpointError as error:
        raise LatentFileError(path, f"not a readable safetensors file: {error.problem}") from None
    if legacy:
        samples = samples * LEGACY_MULTIPLIER
    return LatentFile(samples=samples, family=family, legacy=legacy)


def to_scaled(unscaled: Tensor, family: Family | None) -> Tensor:
    """ComfyUI's unscaled latents in our scaled space (family None: SD 1.x's factor)."""
    return unscaled * (family or SD15).vae_scaling_factor
