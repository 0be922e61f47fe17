"""IP-Adapter files from `ipadapter/`: an image projection and per-layer key/value weights.

The layout is the one h94's IP-Adapter releases use once saved as safetensors (and that
ComfyUI's and diffusers' loaders read): `image_proj.*` for the projection from CLIP vision
embeddings to image tokens, `ip_adapter.{n}.to_k_ip.weight` / `to_v_ip.weight` for the
cross-attention layers, numbered 1, 3, 5, ... in the order diffusers lists the UNet's
attention processors (the even numbers were the self-attention layers, which have none).

The projection kind is read from its keys, as every loader does:
- "base" (IP-Adapter, light): `proj` + `norm`; reads the projected image embedding and gives
  `proj rows / norm width` tokens (4 in h94's files);
- "plus" (IP-Adapter Plus, Plus Face): a perceiver resampler (`latents`, `proj_in`, `layers.*`,
  `proj_out`, `norm_out`); reads the penultimate hidden states and gives `latents` tokens;
- "full" (Full Face): an MLP `proj.0`, `proj.2` and norm `proj.3` over the penultimate
  hidden states, one token per CLIP token.
FaceID files (`perceiver_resampler.*`, or a bare `norm` with an MLP) need face-recognition
embeddings we do not compute and are refused by name. The projections are diffusers' modules
(`ImageProjection`, `IPAdapterPlusImageProjection`, `IPAdapterFullImageProjection`) with the
original names mapped onto theirs here, so the arithmetic is the reference one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.safetensors_file import SafetensorsFile

AdapterKind = Literal["base", "plus", "full"]
PROJ_PREFIX = "image_proj."
LAYER_PREFIX = "ip_adapter."
HEAD_WIDTH = 64  # the resampler's attention heads are 64 wide (its width / 64 heads)
_LAYER_KEY = re.compile(r"^ip_adapter\.(\d+)\.to_([kv])_ip\.weight$")
_RESAMPLER_LAYER = re.compile(r"^layers\.(\d+)\.")


@dataclass(frozen=True, eq=False)
class IpAdapter:
    """IPADAPTER: an image projection and one key/value pair per cross-attention layer."""

    kind: AdapterKind
    image_proj: nn.Module
    to_k: nn.ModuleList  # Linear(cross_attention_dim -> layer width, no bias), per layer
    to_v: nn.ModuleList
    image_embed_dim: int  # the CLIP width it reads (projection dim, or hidden width)
    cross_attention_dim: int  # the UNet's text width, which the image tokens share
    source: str

    @property
    def reads_hidden_states(self) -> bool:
        """Plus and full adapters read the penultimate hidden states, base the image embeds."""
        return self.kind != "base"

    @property
    def layer_count(self) -> int:
        return len(self.to_k)


def load_ip_adapter(
    path: Path, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> IpAdapter:
    """An `ipadapter/` safetensors file as an IPADAPTER handle (see the module docstring)."""
    with SafetensorsFile(path) as file:
        keys = file.keys()
        if not any(k.startswith(PROJ_PREFIX) for k in keys) or not any(
            k.startswith(LAYER_PREFIX) for k in keys
        ):
            raise UnrecognizedCheckpointError(
                path,
                "not an IP-Adapter: it has no image_proj.* and ip_adapter.* weights",
                "Use an IP-Adapter .safetensors file such as ip-adapter_sd15.safetensors",
            )
        read = {k: file.read(k, dtype=dtype or torch.float32) for k in keys}
    projection = {k[len(PROJ_PREFIX) :]: v for k, v in read.items() if k.startswith(PROJ_PREFIX)}
    kind, image_proj, embed_dim = _projection(projection, path)
    to_k, to_v = _layers(read, path)
    cross_dim = cast(nn.Linear, to_k[0]).in_features
    adapter = IpAdapter(kind, image_proj, to_k, to_v, embed_dim, cross_dim, str(path))
    for module in (image_proj, to_k, to_v):
        module.to(device or "cpu").eval().requires_grad_(False)
    return adapter


def _projection(state: dict[str, Tensor], path: Path) -> tuple[AdapterKind, nn.Module, int]:
    from diffusers.models.embeddings import (
        ImageProjection,
        IPAdapterFullImageProjection,
        IPAdapterPlusImageProjection,
    )

    if "perceiver_resampler.proj_in.weight" in state or (
        "norm.weight" in state and "proj.0.weight" in state
    ):
        raise UnrecognizedCheckpointError(
            path,
            "an IP-Adapter FaceID file: it needs face-recognition embeddings (insightface), "
            "which Latentloom does not compute",
            "Use an IP-Adapter, Plus, Plus Face or Full Face file",
        )
    module: nn.Module
    if "proj.weight" in state:
        cross, embed = state["norm.weight"].shape[0], state["proj.weight"].shape[1]
        tokens = state["proj.weight"].shape[0] // cross
        module = ImageProjection(
            image_embed_dim=embed, cross_attention_dim=cross, num_image_text_embeds=tokens
        )
        renamed = {k.replace("proj.", "image_embeds.", 1): v for k, v in state.items()}
        return "base", _filled(module, renamed, path), embed
    if "proj.3.weight" in state:
        embed, cross = state["proj.0.weight"].shape[1], state["proj.3.weight"].shape[0]
        module = IPAdapterFullImageProjection(image_embed_dim=embed, cross_attention_dim=cross)
        names = {"proj.0.": "ff.net.0.proj.", "proj.2.": "ff.net.2.", "proj.3.": "norm."}
        renamed = {_renamed(k, names): v for k, v in state.items()}
        return "full", _filled(module, renamed, path), embed
    if "latents" in state:
        hidden = state["latents"].shape[2]
        embed = state["proj_in.weight"].shape[1]
        depth = 1 + max(int(m.group(1)) for k in state if (m := _RESAMPLER_LAYER.match(k)))
        module = IPAdapterPlusImageProjection(
            embed_dims=embed,
            output_dims=state["proj_out.weight"].shape[0],
            hidden_dims=hidden,
            depth=depth,
            dim_head=HEAD_WIDTH,
            heads=state["layers.0.0.to_q.weight"].shape[0] // HEAD_WIDTH,
            num_queries=state["latents"].shape[1],
            ffn_ratio=state["layers.0.1.1.weight"].shape[0] // hidden,
        )
        return "plus", _filled(module, _resampler_names(state), path), embed
    raise UnrecognizedCheckpointError(
        path,
        f"unknown IP-Adapter image projection (keys: {sorted(state)[:6]})",
        "Supported: IP-Adapter (image_proj.proj), Plus (image_proj.latents), Full Face "
        "(image_proj.proj.3)",
    )


def _renamed(key: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def _resampler_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The original perceiver resampler's names -> diffusers' (to_kv split in two)."""
    per_layer = {
        "0.norm1.": "ln0.",
        "0.norm2.": "ln1.",
        "0.to_q.": "attn.to_q.",
        "0.to_out.": "attn.to_out.0.",
        "1.0.": "ff.0.",
        "1.1.": "ff.1.net.0.proj.",
        "1.3.": "ff.1.net.2.",
    }
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        match = _RESAMPLER_LAYER.match(key)
        if match is None:
            renamed[key] = value
            continue
        head, rest = match.group(0), key[match.end() :]
        if rest.startswith("0.to_kv."):
            k, v = value.chunk(2, dim=0)
            suffix = rest[len("0.to_kv.") :]
            renamed[f"{head}attn.to_k.{suffix}"], renamed[f"{head}attn.to_v.{suffix}"] = k, v
        else:
            renamed[head + _renamed(rest, per_layer)] = value
    return renamed


def _filled(module: nn.Module, state: dict[str, Tensor], path: Path) -> nn.Module:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or wrong:
        raise WeightMismatchError(
            path,
            f"the image projection's weights do not fit a {type(module).__name__}: missing "
            f"{missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}",
        )
    module.load_state_dict(state)
    return module.to(next(iter(state.values())).dtype)


def _layers(read: dict[str, Tensor], path: Path) -> tuple[nn.ModuleList, nn.ModuleList]:
    found: dict[tuple[int, str], Tensor] = {}
    for key, value in read.items():
        match = _LAYER_KEY.match(key)
        if match is not None:
            found[(int(match.group(1)), match.group(2))] = value
        elif key.startswith(LAYER_PREFIX):
            raise WeightMismatchError(path, f"unexpected IP-Adapter layer weight {key!r}")
    numbers = sorted({number for number, _ in found})
    expected = list(range(1, 2 * len(numbers), 2))
    if numbers != expected or len(found) != 2 * len(numbers):
        raise WeightMismatchError(
            path,
            f"IP-Adapter layers must be numbered 1, 3, 5, ... each with to_k_ip and to_v_ip; "
            f"found numbers {numbers[:8]}{'...' if len(numbers) > 8 else ''}",
        )
    to_k, to_v = nn.ModuleList(), nn.ModuleList()
    for number in numbers:
        for target, letter in ((to_k, "k"), (to_v, "v")):
            weight = found[(number, letter)]
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
            linear.weight = nn.Parameter(weight, requires_grad=False)
            target.append(linear)
    return to_k, to_v


def project(adapter: IpAdapter, embeds: Tensor) -> Tensor:
    """CLIP embeddings ([n, dim] or [n, tokens, width]) -> image tokens [n, T, cross dim]."""
    module = cast(Any, adapter.image_proj)
    parameter = next(adapter.image_proj.parameters())
    with torch.inference_mode():
        return cast(Tensor, module(embeds.to(parameter.device, parameter.dtype)))
