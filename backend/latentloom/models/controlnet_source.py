"""ControlNet and T2I-Adapter sources: a loaded control model, its image, strength and range.

The denoiser hands a source each UNet call it joins (`handles.ControlCall`). The control image
(IMAGE, [B, H, W, 3] in 0..1) is fitted to the call's input size x the VAE's downscale as
ComfyUI does: cropped centrally to the new aspect ratio, then resized with "nearest-exact", so
an area entry gets the whole image squeezed into its box. A batch of images is repeated or
cut to the latent's batch and tiled over the regions of the call (ComfyUI's
broadcast_image_to). A ControlNet runs on the UNet's own input, timestep, text and SDXL
conditioning; a T2I-Adapter looks at the image only, so its features are computed once per
size and reused at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.models.family import Family
from latentloom.models.handles import ControlCall, ControlResiduals

if TYPE_CHECKING:
    from diffusers import ControlNetModel, T2IAdapter

ControlKind = Literal["controlnet", "t2i_adapter", "control_lora"]


@dataclass(frozen=True)
class ControlModel:
    """CONTROL_NET: a ControlNet or T2I-Adapter module and what it was made for."""

    module: ControlNetModel | T2IAdapter
    kind: ControlKind
    family: Family
    source: str  # the file or folder it came from, for messages
    layout: str = ""  # how it was recognised, for the loader's report
    # A union ControlNet's control type (controlnet_union.UNION_TYPES); None: "auto".
    union_type: int | None = None

    @property
    def is_union(self) -> bool:
        return hasattr(self.module, "task_embedding")

    @property
    def display_kind(self) -> str:
        names = {"controlnet": "ControlNet", "t2i_adapter": "T2I-Adapter"}
        return names.get(self.kind, "Control-LoRA")


def fit_image(image: Tensor, height: int, width: int) -> Tensor:
    """[B, 3, H, W] cropped centrally to height:width's aspect ratio, resized (nearest-exact)."""
    old_height, old_width = image.shape[-2:]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    cropped = image[..., y : old_height - y, x : old_width - x]
    if tuple(cropped.shape[-2:]) == (height, width):
        return cropped
    return F.interpolate(cropped, size=(height, width), mode="nearest-exact")


def broadcast_to_call(hint: Tensor, batch: int, total: int) -> Tensor:
    """The hint batch fitted to `batch` (repeated or cut) and tiled to `total` rows."""
    if hint.shape[0] == 1:
        return hint.expand(total, -1, -1, -1)
    hint = hint[:batch]
    if hint.shape[0] < batch:
        repeats = -(-batch // hint.shape[0])
        hint = hint.repeat(repeats, 1, 1, 1)[:batch]
    return hint.repeat(total // batch, 1, 1, 1)


@dataclass(frozen=True, eq=False)
class ControlNetSource:
    """A ControlNet with its control image (an IMAGE, [B, H, W, 3] in 0..1)."""

    model: ControlModel
    image: Tensor
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    _hints: dict[tuple[int, int, str, torch.dtype], Tensor] = field(default_factory=dict)

    def hint(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The control image as [B, 3, height, width] on `device`, cached per size."""
        key = (height, width, str(device), dtype)
        if key not in self._hints:
            image = self.image.movedim(-1, 1).to(torch.float32)
            self._hints[key] = fit_image(image, height, width).to(device, dtype)
        return self._hints[key]

    def residuals(self, call: ControlCall) -> ControlResiduals:
        check_family(self.model, call)
        return self.run(self.model.module, call)

    def run(self, controlnet: Any, call: ControlCall) -> ControlResiduals:
        """`controlnet`'s residuals for the call, on this source's image."""
        module: Any = controlnet
        scale = self.model.family.downscale
        hint = self.hint(call.x_in.shape[-2] * scale, call.x_in.shape[-1] * scale, *_place(module))
        hint = broadcast_to_call(hint, call.batch, call.x_in.shape[0])
        if self.model.is_union:
            from latentloom.models.controlnet_union import union_residuals

            down, mid = union_residuals(
                module,
                call.x_in,
                call.timestep,
                call.context,
                hint,
                call.added_cond,
                self.model.union_type,
            )
            return ControlResiduals(down=tuple(down), mid=mid)
        down, mid = module(
            call.x_in,
            call.timestep,
            encoder_hidden_states=call.context,
            controlnet_cond=hint,
            added_cond_kwargs=call.added_cond,
            return_dict=False,
        )
        return ControlResiduals(down=tuple(down), mid=mid)


@dataclass(frozen=True, eq=False)
class AdapterSource:
    """A T2I-Adapter with its control image; features depend on the image alone."""

    model: ControlModel
    image: Tensor
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    _features: dict[tuple[int, int, int, int], tuple[Tensor, ...]] = field(default_factory=dict)

    def residuals(self, call: ControlCall) -> ControlResiduals:
        check_family(self.model, call)
        scale = self.model.family.downscale
        height, width = call.x_in.shape[-2] * scale, call.x_in.shape[-1] * scale
        key = (height, width, call.batch, call.x_in.shape[0])
        if key not in self._features:
            self._features[key] = self._compute(height, width, call.batch, call.x_in.shape[0])
        return ControlResiduals(intrablock=self._features[key])

    @torch.no_grad()
    def _compute(self, height: int, width: int, batch: int, total: int) -> tuple[Tensor, ...]:
        module: Any = self.model.module
        device, dtype = _place(module)
        image = fit_image(self.image.movedim(-1, 1).to(torch.float32), height, width)
        if int(module.config.in_channels) == 1:
            # Sketch/canny adapters read one channel: the image's grey level, as ComfyUI does.
            image = image.mean(dim=1, keepdim=True)
        features = module(image.to(device, dtype))
        return tuple(broadcast_to_call(f, batch, total) for f in features)


def check_family(model: ControlModel, call: ControlCall) -> None:
    """Refuse a control model made for another family before diffusers fails on a shape."""
    sdxl_call = call.added_cond is not None
    module: Any = model.module
    width = getattr(module.config, "cross_attention_dim", None)
    if sdxl_call == (model.family.name == "sdxl") and width in (None, call.context.shape[-1]):
        return
    raise ValueError(
        f"{model.display_kind} {model.source} is for {model.family.display_name}, but the model "
        f"being sampled is {'SDXL' if sdxl_call else 'not SDXL'} with "
        f"{call.context.shape[-1]}-wide text embeddings; load a {model.display_kind} made for "
        "the checkpoint's family"
    )


def _place(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(module.parameters())
    return parameter.device, parameter.dtype
