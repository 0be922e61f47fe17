"""The tiny random-weight models a fresh install offers, so every example workflow runs.

Each entry is a file the examples name and the function that writes it (and its siblings);
a file already there is kept, so a demo folder from an earlier version only gains what is
new. Random weights make noise, not pictures: the point is that every graph runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

DEMO_CHECKPOINT: Final = "tiny-sd15.safetensors"
DEMO_CONTROLNET: Final = "tiny-controlnet-sd15.safetensors"
DEMO_UPSCALER: Final = "tiny-esrgan-x4.safetensors"
DEMO_SDXL: Final = "tiny-sdxl.safetensors"
DEMO_SDXL_REFINER: Final = "tiny-sdxl-refiner.safetensors"  # shares tiny-sdxl's VAE and bigG
DEMO_SD3: Final = "tiny-sd3.safetensors"


def _checkpoint(root: Path) -> None:
    from latentloom.models.tiny import make_tiny_checkpoint

    make_tiny_checkpoint("sd15", root / "checkpoints" / DEMO_CHECKPOINT)


def _parts(root: Path) -> None:  # the separate VAE and the embeddings
    from latentloom.models.tiny_parts import make_example_parts

    make_example_parts(root)


def _ip_adapters(root: Path) -> None:  # CLIP vision and IP-Adapter files
    from latentloom.models.ip_adapter_tiny import make_example_ip_adapters

    make_example_ip_adapters(root)


def _controlnet(root: Path) -> None:
    from latentloom.models.tiny_control import make_tiny_controlnet

    make_tiny_controlnet("sd15", root / "controlnet" / DEMO_CONTROLNET)


def _upscaler(root: Path) -> None:
    from latentloom.models.tiny_upscale import make_tiny_upscaler

    make_tiny_upscaler(root / "upscale_models" / DEMO_UPSCALER)


def _sd3(root: Path) -> None:  # SD 3.5-shaped, with CLIP-L, CLIP-G and T5 inside
    from latentloom.models.tiny import make_tiny_checkpoint

    make_tiny_checkpoint("sd3", root / "checkpoints" / DEMO_SD3)


def _sdxl_pair(root: Path) -> None:  # the base -> refiner example's two checkpoints
    from latentloom.models.tiny import make_tiny_checkpoint

    make_tiny_checkpoint("sdxl", root / "checkpoints" / DEMO_SDXL)
    make_tiny_checkpoint("sdxl-refiner", root / "checkpoints" / DEMO_SDXL_REFINER)


def _flux(root: Path) -> None:  # both FLUX.1 transformers, CLIP-L, T5-XXL and the AE
    from latentloom.models.flux_tiny import make_tiny_flux_parts

    make_tiny_flux_parts(root)


def _demo_files() -> tuple[tuple[str, Callable[[Path], None]], ...]:
    from latentloom.models.flux_tiny import FLUX_TINY_FILES
    from latentloom.models.ip_adapter_tiny import EXAMPLE_IP_ADAPTER
    from latentloom.models.tiny_parts import EXAMPLE_VAE

    return (
        (f"checkpoints/{DEMO_CHECKPOINT}", _checkpoint),
        (f"vae/{EXAMPLE_VAE}", _parts),
        (f"ipadapter/{EXAMPLE_IP_ADAPTER}", _ip_adapters),
        (f"controlnet/{DEMO_CONTROLNET}", _controlnet),
        (f"upscale_models/{DEMO_UPSCALER}", _upscaler),
        (f"checkpoints/{DEMO_SDXL_REFINER}", _sdxl_pair),
        (f"checkpoints/{DEMO_SD3}", _sd3),
        (FLUX_TINY_FILES["ae"], _flux),  # the last of the FLUX files written
    )


def ensure_demo_models(root: Path) -> Path:
    """Write whichever demo files `root` lacks; the demo checkpoint's path."""
    for relative, make in _demo_files():
        if not (root / relative).exists():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            make(root)
    return root / "checkpoints" / DEMO_CHECKPOINT
