"""The values that travel along MODEL, CLIP, VAE, CONDITIONING and LATENT links.

They are frozen: a node that changes one (a LoRA, a new latent) returns a new handle and never
mutates its input, so cached outputs stay valid. Heavy modules are shared between handles;
weight patches such as LoRA deltas are recorded on the handle and applied only for the
duration of a forward pass (see `models/patching.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch

from latentloom.models.family import Family

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import (
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        PreTrainedTokenizerBase,
        T5EncoderModel,
    )

    from latentloom.models.attention_patching import AttentionPatch
    from latentloom.sampling.model_sampling import ModelSampling

PredictionType = Literal["epsilon", "v_prediction"]


class WeightPatch(Protocol):
    """A change to one parameter, applied as `weight + delta(weight)` while in use."""

    @property
    def target(self) -> str:
        """Dotted parameter name inside the module being patched, e.g. `down_blocks.0...weight`."""
        ...

    def delta(self, weight: torch.Tensor) -> torch.Tensor: ...


class NetworkCall(Protocol):
    """How the guided denoiser calls a network that is not a diffusers UNet (SD3, FLUX).

    `x_in` [N, C, h, w] is already scaled (`ModelSampling.scale_input`) and in the network's
    dtype; `timestep` is 0-d float32 from `ModelSampling.timestep`; `context` [N, T, D];
    `pooled` [N, P] or None; `extras` e.g. {"guidance": Tensor[N]} for FLUX dev. Returns the
    raw output [N, C, h, w] (what `ModelSampling.denoised` turns into x0).
    """

    def __call__(
        self,
        x_in: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        pooled: torch.Tensor | None,
        extras: Mapping[str, torch.Tensor],
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class DiffusionModel:
    """MODEL: the denoising network and how it maps sigmas to its input and output.

    `unet` holds the network (a diffusers UNet, or the SD3 / FLUX transformer), so patching,
    LoRA and device code treat every family alike. `sampling` None means the discrete
    schedule from `prediction_type` and `alphas_cumprod` (SD 1.x / 2.x / SDXL); read it through
    `model_sampling`. `network_call` None means the denoiser calls the UNet as diffusers does.
    """

    unet: UNet2DConditionModel
    family: Family
    prediction_type: PredictionType
    alphas_cumprod: torch.Tensor  # float64, one entry per training timestep (1000)
    source: str  # the file or folder it came from, for messages
    patches: tuple[WeightPatch, ...] = ()
    prediction_rule: str = ""  # why it is epsilon or v (models/detect.py), for the node report
    # Extra cross-attention (IP-Adapter), installed only while sampling (attention_patching.py).
    attention_patches: tuple[AttentionPatch, ...] = ()
    sampling: ModelSampling | None = None
    network_call: NetworkCall | None = None

    @property
    def model_sampling(self) -> ModelSampling:
        """How sigma maps to the network and back (sampling/model_sampling.py).

        Built afresh for the discrete default (a 1000-entry table, microseconds), so the
        handle's __dict__ holds only its fields and copies made from it stay exact.
        """
        if self.sampling is not None:
            return self.sampling
        # Imported here: handles stay importable without the sampling package's modules.
        from latentloom.sampling.model_sampling import DiscreteSampling

        return DiscreteSampling(self.prediction_type, self.alphas_cumprod)

    @property
    def input_channels(self) -> int:
        """Channels the UNet takes: the latent's 4, or 9 for inpainting models (latent, mask,
        masked-image latent)."""
        config: Any = getattr(self.unet, "config", None)
        if self.family.name == "flux":  # FLUX packs 2x2 patches: 64 = 16 latent channels x 4
            return int(getattr(config, "in_channels", 64)) // 4
        return int(getattr(config, "in_channels", 4))


@dataclass(frozen=True)
class ClipTextEncoder:
    """One CLIP text tower and its tokenizer."""

    model: CLIPTextModel | CLIPTextModelWithProjection
    tokenizer: CLIPTokenizer
    layer: Literal["last", "penultimate"]
    # SD 2.x applies the final layer norm to the penultimate hidden state; SDXL does not.
    final_norm_on_penultimate: bool
    pad_token_id: int
    patches: tuple[WeightPatch, ...] = ()
    # CLIP Set Last Layer: the hidden state to read, counted from the end as ComfyUI does (-1
    # the last layer, -2 the one before...); None keeps the family's default (`layer`).
    stop_at_layer: int | None = None


@dataclass(frozen=True)
class T5TextEncoder:
    """The T5 v1.1 XXL encoder of SD 3 / FLUX (text/t5_encode.py reads its last hidden state).

    Prompts are padded with `<pad>` to at least `min_length` tokens (ComfyUI's: 77 for SD 3,
    256 for FLUX) and kept whole when longer. `stop_at_layer` exists so CLIP Set Last Layer
    can treat every encoder alike; T5 ignores it.
    """

    model: T5EncoderModel
    tokenizer: PreTrainedTokenizerBase
    min_length: int
    patches: tuple[WeightPatch, ...] = ()
    stop_at_layer: int | None = None


@dataclass(frozen=True)
class TextEncoders:
    """CLIP: one encoder for SD 1.x / 2.x, two (CLIP-L, OpenCLIP bigG) for SDXL; for SD 3 any
    of CLIP-L, CLIP-G and T5, for FLUX CLIP-L and T5 (T5 last; see text/t5_encode.py)."""

    family: Family
    encoders: tuple[ClipTextEncoder | T5TextEncoder, ...]
    source: str


@dataclass(frozen=True)
class Vae:
    """VAE: the autoencoder between pixels and the family's scaled latent space."""

    module: AutoencoderKL
    family: Family
    source: str


@dataclass(frozen=True)
class Checkpoint:
    model: DiffusionModel
    clip: TextEncoders
    vae: Vae


@dataclass(frozen=True)
class LatentArea:
    """A rectangle on the latent grid, in latent pixels (ComfyUI's Set Area: pixels // 8)."""

    height: int
    width: int
    y: int
    x: int


@dataclass(frozen=True)
class FractionArea:
    """A rectangle as fractions (0..1) of the latent's height and width, resolved when sampling
    (ComfyUI's Set Area (Percentage)): size max(1, round(f * side)), offset round(f * side)."""

    height: float
    width: float
    y: float
    x: float


@dataclass(frozen=True)
class ControlCall:
    """What a control source sees of one UNet call (several regions x the latent's batch).

    Everything is as the UNet receives it, so a ControlNet can run on exactly the UNet's input:
    `x_in` is the scaled input over the call's boxes (its size x the VAE's downscale is the
    size the control image must have), `context` the text embeddings, `added_cond` SDXL's
    `text_embeds` / `time_ids` (None for SD 1.x / 2.x).
    """

    x_in: torch.Tensor  # [N, C, h, w]; N = regions in the call x batch
    timestep: torch.Tensor  # the UNet's timestep (0-d)
    sigma: torch.Tensor  # the sampler's sigma (0-d)
    context: torch.Tensor  # [N, tokens, context_dim]
    added_cond: dict[str, torch.Tensor] | None
    batch: int  # the latent's batch; the call holds N // batch regions, each a run of `batch`


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


def _add_all(
    a: tuple[torch.Tensor, ...] | None, b: tuple[torch.Tensor, ...] | None
) -> tuple[torch.Tensor, ...] | None:
    if a is None or b is None:
        return b if a is None else a
    if len(a) != len(b):
        raise ValueError(
            f"control residuals for {len(a)} and {len(b)} UNet blocks cannot be summed; "
            f"stack only ControlNets / T2I-Adapters made for the same UNet"
        )
    return tuple(x + y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class ControlResiduals:
    """What control sources add to a UNet call, in diffusers' terms.

    `down`: one tensor per skip connection (`down_block_additional_residuals`, ControlNet),
    `mid`: the middle block's output (`mid_block_additional_residual`, ControlNet),
    `intrablock`: one per down level (`down_intrablock_additional_residuals`, T2I-Adapter).
    """

    down: tuple[torch.Tensor, ...] | None = None
    mid: torch.Tensor | None = None
    intrablock: tuple[torch.Tensor, ...] | None = None

    def scaled(self, factor: float) -> ControlResiduals:
        if factor == 1.0:
            return self
        return ControlResiduals(
            down=None if self.down is None else tuple(t * factor for t in self.down),
            mid=None if self.mid is None else self.mid * factor,
            intrablock=None
            if self.intrablock is None
            else tuple(t * factor for t in self.intrablock),
        )

    def __add__(self, other: ControlResiduals) -> ControlResiduals:
        return ControlResiduals(
            down=_add_all(self.down, other.down),
            mid=_add(self.mid, other.mid),
            intrablock=_add_all(self.intrablock, other.intrablock),
        )


class ControlSource(Protocol):
    """A ControlNet or T2I-Adapter with its control image, attached to conditioning entries.

    The guided denoiser asks every source of a UNet call's entries for `residuals` while
    the sigma lies within the source's start/end percent of the schedule (converted as entry
    timestep ranges are, `sampling/regions.percent_to_sigma`), scales them by `strength`,
    sums them over the sources and passes the sum to the UNet (`sampling/control.py`). Entries
    share a UNet call only when they carry the same sources (by identity), so Apply ControlNet
    attaches one source object to both positive and negative, as diffusers' pipelines run the
    ControlNet once on [uncond, cond]. A source never mutates its inputs.
    """

    @property
    def strength(self) -> float: ...

    @property
    def start_percent(self) -> float: ...

    @property
    def end_percent(self) -> float: ...

    def residuals(self, call: ControlCall) -> ControlResiduals:
        """Unscaled residuals for this call (the denoiser applies `strength`)."""
        ...


@dataclass(frozen=True)
class SizeConditioning:
    """SDXL's micro-conditioning of one entry, in pixels as (height, width).

    A base UNet gets [orig h, orig w, crop top, crop left, target h, target w] (`target` None:
    the original size, as ComfyUI defaults it); a refiner UNet gets [orig h, orig w, crop top,
    crop left, aesthetic score] (`aesthetic_score` None: 6.0 on the positive side, 2.5 on the
    negative, as ComfyUI and diffusers default them).
    """

    original: tuple[int, int]
    crop_top_left: tuple[int, int] = (0, 0)
    target: tuple[int, int] | None = None
    aesthetic_score: float | None = None


@dataclass(frozen=True)
class ConditioningEntry:
    """One prompt's encoding and where and when it applies (see `sampling/regions.py`).

    The guided denoiser runs the UNet for an entry on its area's crop of the latent (or the
    whole latent), weights the prediction per pixel by strength x mask x mask_strength, and
    averages all applying entries of positive (and of negative) by those weights, as ComfyUI's
    calc_cond_batch does. Every field but the encoding defaults to "everywhere, always".
    """

    embeds: torch.Tensor  # [1, tokens, context_dim]
    pooled: torch.Tensor | None = None  # [1, 1280] SDXL, [1, 2048] SD3, [1, 768] FLUX; SD: None
    area: LatentArea | FractionArea | None = None
    strength: float = 1.0
    mask: torch.Tensor | None = None  # [1 or B, H, W] in 0..1, any resolution (resized)
    mask_strength: float = 1.0
    # ComfyUI's "mask bounds": the area becomes the mask's bounding box (at least 8 latent px).
    set_area_to_bounds: bool = False
    # The part of the schedule (0 = first step, 1 = last) where the entry applies; converted to
    # sigmas through the model's training schedule, as ComfyUI's percent_to_sigma does.
    start_percent: float = 0.0
    end_percent: float = 1.0
    control: tuple[ControlSource, ...] = ()
    # FLUX dev's distilled guidance (FluxGuidance / CLIPTextEncodeFlux); None: the model's
    # default. Entries with different guidance never share a network call.
    guidance: float | None = None
    # SDXL size / crop / aesthetic conditioning; None: the latent's size, no crop.
    size: SizeConditioning | None = None


@dataclass(frozen=True)
class Conditioning:
    """CONDITIONING: a list of entries the guided denoiser evaluates and blends.

    A prompt encodes to one entry; Combine joins lists, and the Set Area / Set Mask / Set
    Timestep Range nodes return copies of every entry with those fields set.
    """

    entries: tuple[ConditioningEntry, ...]

    @classmethod
    def of(cls, embeds: torch.Tensor, pooled: torch.Tensor | None = None) -> Conditioning:
        """One entry that applies everywhere, at every step: what a prompt encodes to."""
        return cls((ConditioningEntry(embeds, pooled),))

    @property
    def first(self) -> ConditioningEntry:
        if not self.entries:
            raise ValueError("the conditioning has no entries")
        return self.entries[0]


@dataclass(frozen=True)
class Latent:
    """LATENT: a batch in the family's scaled latent space ([B, C, H/8, W/8])."""

    samples: torch.Tensor
    family: Family | None = None  # None until a model or VAE has fixed it
    # Where a sampler may change the latent: [B or 1, H, W] in 0..1, at any resolution (it is
    # resized to the latent's); 0 keeps the source. None: everywhere (Set Latent Noise Mask).
    noise_mask: torch.Tensor | None = None
