"""Upscale models (ESRGAN, Real-ESRGAN, SwinIR, ...) loaded through spandrel from safetensors.

spandrel is the architecture detector the ecosystem shares: given a state dict it recognises
the architecture from the key names and shapes and builds the module. We never let it open
files (its file loader unpickles `.pth`): the weights are read with our own validating
safetensors reader, and pickles, by suffix or by their magic bytes, are refused with a note
on converting them once, in a Python the user trusts.

spandrel imports torchvision at import time for two architectures that are not upscalers
(LaMa inpainting, RestoreFormer face restoration), and torchvision has no CPU build matching
our torch. When torchvision is missing (or its import fails) spandrel is imported with a
stand-in whose functions refuse to run, removed again right after, so nothing else sees it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import torch

from latentloom.models.errors import PickleCheckpointError, UnrecognizedCheckpointError
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path

PICKLE_ADVICE = (
    "Latentloom never unpickles model files (a pickle can run arbitrary code). Convert it once "
    "in a Python you trust: `sd = torch.load(path, weights_only=True)`, take "
    "`sd.get('params_ema', sd.get('params', sd))`, then "
    "`safetensors.torch.save_file(sd, 'model.safetensors')` and put that file in upscale_models/"
)
_STAND_IN_NAMES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


@dataclass(frozen=True)
class UpscaleModel:
    """UPSCALE_MODEL: an image-to-image model and what spandrel detected about it."""

    module: torch.nn.Module
    architecture: str  # spandrel's name, e.g. "ESRGAN"
    scale: int  # output side / input side
    input_channels: int
    output_channels: int
    tags: tuple[str, ...]  # e.g. ("64nf", "23nb")
    tiling: str  # spandrel's advice: "supported", "discouraged" or "internal"
    source: str
    call: Any  # spandrel's descriptor: pads to the model's size rules, clamps to 0..1

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """[1, C, h, w] in 0..1 on the model's device and dtype -> [1, C, h*scale, w*scale]."""
        return cast(torch.Tensor, self.call(image))

    @property
    def parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.module.parameters())

    @property
    def placement(self) -> tuple[torch.device, torch.dtype]:
        parameter = next(self.module.parameters())
        return parameter.device, parameter.dtype


def _refusing(name: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            f"torchvision.{name} is not available here (torchvision is not installed): the "
            "spandrel architecture that needs it (LaMa or RestoreFormer) cannot run"
        )

    return refuse


def _stand_in() -> dict[str, ModuleType]:
    modules = {name: ModuleType(name) for name in _STAND_IN_NAMES}
    functional = modules["torchvision.transforms.functional"]
    functional.normalize = _refusing("transforms.functional.normalize")  # type: ignore[attr-defined]
    functional.rotate = _refusing("transforms.functional.rotate")  # type: ignore[attr-defined]
    functional.InterpolationMode = type("InterpolationMode", (), {"BILINEAR": "bilinear"})  # type: ignore[attr-defined]
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = functional  # type: ignore[attr-defined]
    return modules


def spandrel_module() -> ModuleType:
    """spandrel, imported once (with the torchvision stand-in when torchvision is unusable)."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise RuntimeError(
            "upscale models need spandrel, which is not installed: "
            "pip install --no-deps 'spandrel>=0.4,<0.5' (its torchvision is not needed)"
        )
    if importlib.util.find_spec("torchvision") is not None:
        try:
            import spandrel

            return spandrel
        except (ImportError, RuntimeError):  # a torchvision built for another torch
            for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "spandrel")]:
                del sys.modules[name]
    stand_in = _stand_in()
    sys.modules.update(stand_in)
    try:
        import spandrel
    finally:
        for name in stand_in:
            sys.modules.pop(name, None)
    return spandrel


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, as stored; pickles refused with the advice above."""
    try:
        refuse_pickle_path(path)
        with SafetensorsFile(path) as file:
            return {key: file.read(key) for key in file}
    except PickleCheckpointError as error:
        raise PickleCheckpointError(path, error.problem, PICKLE_ADVICE) from None


def load_upscale_model(
    path: Path, *, device: torch.device, dtype: torch.dtype = torch.float32
) -> UpscaleModel:
    """The upscaler in a `.safetensors` file, on `device` (in `dtype` where spandrel says the
    architecture supports it, else float32)."""
    spandrel = spandrel_module()
    state = spandrel.canonicalize_state_dict(read_state_dict(path))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        shown = ", ".join(sorted(state)[:5]) or "no tensors"
        raise UnrecognizedCheckpointError(
            path,
            f"spandrel {spandrel.__version__} recognises no architecture in these weights "
            f"({len(state)} tensors: {shown}, ...)",
            "Upscale models spandrel supports include ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, "
            "OmniSR, SPAN and Compact",
        ) from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UnrecognizedCheckpointError(
            path,
            f"a {descriptor.architecture.name} model ({descriptor.purpose}), which takes an "
            "image and a mask; Upscale Image (using Model) needs an image-to-image model",
        )
    supported = {
        torch.float16: descriptor.supports_half,
        torch.bfloat16: descriptor.supports_bfloat16,
    }.get(dtype, True)
    descriptor = descriptor.to(device, dtype if supported else torch.float32).eval()
    return UpscaleModel(
        module=descriptor.model,
        architecture=descriptor.architecture.name,
        scale=int(descriptor.scale),
        input_channels=int(descriptor.input_channels),
        output_channels=int(descriptor.output_channels),
        tags=tuple(descriptor.tags),
        tiling=descriptor.tiling.name.lower(),
        source=str(path),
        call=descriptor,
    )
