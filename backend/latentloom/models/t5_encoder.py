"""Build transformers' T5EncoderModel from T5 weights in the layouts users have, never unpickling.

SD 3 / 3.5 and FLUX.1 read their long prompt through the encoder half of T5 v1.1 XXL. Users
keep it as a standalone file (`text_encoders/t5xxl_fp16.safetensors`: `encoder.block.N...`,
`shared.weight`), inside an SD 3 single file (under `text_encoders.t5xxl.transformer.`), or in
a diffusers folder (`text_encoder_3/` for SD 3, `text_encoder_2/` for FLUX, possibly sharded
into several `model-0000k-of-0000n.safetensors`). All of them use transformers' names below a
prefix, so one builder serves them all:

1. find the prefix by the first block's relative attention bias (only block 0 has one);
2. derive the config from shapes: d_model and vocabulary from the token embedding, heads and
   buckets from the relative attention bias, d_kv from the query projection, d_ff and the
   feed-forward kind from `wi_0`/`wi_1` (gated GELU, T5 v1.1) or `wi` (ReLU, original T5);
3. build the model on the meta device, rehearse every tensor's name and shape (all problems
   reported together before a byte is read), then read tensor by tensor into place.

The token embedding is stored once (`shared.weight`; some files name it
`encoder.embed_tokens.weight`) and tied to the encoder's embedding after loading, as
transformers ties them. Decoder tensors of a full T5 file are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import T5Config, T5EncoderModel

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path

if TYPE_CHECKING:
    from latentloom.models.handles import T5TextEncoder

T5_MARKER = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
_EMBEDDING_NAMES = ("shared.weight", "encoder.embed_tokens.weight")
_TIED = "encoder.embed_tokens.weight"  # the encoder's copy of `shared.weight`
_MAX_LISTED = 12
Source = Path | str | Mapping[str, torch.Tensor]


def t5_prefix(keys: Iterable[str]) -> str | None:
    """What comes before `encoder.block.0...` in a file holding a T5 encoder, or None."""
    for key in keys:
        if key.endswith(T5_MARKER):
            return key[: -len(T5_MARKER)]
    return None


def _block_count(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> int:
    start = prefix + "encoder.block."
    found = {key[len(start) :].split(".", 1)[0] for key in shapes if key.startswith(start)}
    return len([index for index in found if index.isdigit()])


def t5_config(shapes: Mapping[str, tuple[int, ...]], prefix: str, source: str) -> T5Config:
    """The encoder's config from tensor shapes under `prefix` (see the module docstring)."""
    embedding = next((prefix + name for name in _EMBEDDING_NAMES if prefix + name in shapes), None)
    if embedding is None or prefix + T5_MARKER not in shapes:
        raise UnrecognizedCheckpointError(
            source,
            f"not a T5 encoder under prefix {prefix!r}: expected {prefix}shared.weight (or "
            f"{prefix}encoder.embed_tokens.weight) and {prefix}{T5_MARKER}",
        )
    vocab_size, d_model = shapes[embedding]
    buckets, heads = shapes[prefix + T5_MARKER]
    ff = prefix + "encoder.block.0.layer.1.DenseReluDense."
    gated = ff + "wi_0.weight" in shapes
    d_ff = shapes[ff + ("wi_0.weight" if gated else "wi.weight")][0]
    inner = shapes[prefix + "encoder.block.0.layer.0.SelfAttention.q.weight"][0]
    return T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=inner // heads,
        d_ff=d_ff,
        num_layers=_block_count(shapes, prefix),
        num_heads=heads,
        relative_attention_num_buckets=buckets,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu" if gated else "relu",
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
        is_encoder_decoder=False,
        use_cache=False,
    )


class _Tensors:
    """Tensors by name from safetensors files or an in-memory state dict, read on demand."""

    def __init__(self, source: Source, stack: ExitStack) -> None:
        self.memory: Mapping[str, torch.Tensor] = {}
        self.files: dict[str, SafetensorsFile] = {}
        if isinstance(source, Mapping):
            self.memory, self.name = source, "the given state dict"
            return
        path = Path(source)
        self.name = str(path)
        paths = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
        if not paths:
            raise UnrecognizedCheckpointError(
                path,
                "no .safetensors files in this folder",
                "Point at the text encoder's folder (text_encoder_3/ for SD 3, text_encoder_2/ "
                "for FLUX) or at a .safetensors file",
            )
        for item in paths:
            refuse_pickle_path(item)
            file = stack.enter_context(SafetensorsFile(item))
            self.files.update(dict.fromkeys(file.keys(), file))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self.files:
            return {key: file.shape(key) for key, file in self.files.items()}
        return {key: tuple(tensor.shape) for key, tensor in self.memory.items()}

    def read(self, key: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        if key in self.files:
            return self.files[key].read(key, dtype=dtype, device=device)
        return self.memory[key].detach().to(device=device, dtype=dtype, copy=True)


def _plan(
    module: nn.Module, shapes: Mapping[str, tuple[int, ...]], prefix: str, source: str
) -> dict[str, str]:
    """Module name -> source key for every tensor, or every mismatch reported at once."""
    plan: dict[str, str] = {}
    problems: list[str] = []
    for name, tensor in module.state_dict().items():
        if name == _TIED:
            continue
        candidates = _EMBEDDING_NAMES if name == "shared.weight" else (name,)
        key = next((prefix + c for c in candidates if prefix + c in shapes), None)
        if key is None:
            problems.append(f"missing {prefix}{name}")
        elif shapes[key] != tuple(tensor.shape):
            problems.append(f"'{key}' has shape {list(shapes[key])}, expected {list(tensor.shape)}")
        else:
            plan[name] = key
    if problems:
        shown = problems[:_MAX_LISTED]
        more = f" and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise WeightMismatchError(
            source, "the T5 encoder's tensors do not fit: " + "; ".join(shown) + more
        )
    return plan


def _put(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name)
    setattr(owner, leaf, nn.Parameter(tensor, requires_grad=False))


def build_t5_encoder(
    source: Source,
    prefix: str | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> T5EncoderModel:
    """A T5 encoder from a file, a folder of (sharded) files, or a state dict.

    `prefix` is what precedes `encoder.block...` (e.g. `text_encoders.t5xxl.transformer.` in
    an SD 3 single file); None finds it. The model comes back in `dtype` on `device`, in eval
    mode with gradients off.
    """
    device = torch.device(device)
    with ExitStack() as stack:
        tensors = _Tensors(source, stack)
        shapes = tensors.shapes()
        found = t5_prefix(shapes) if prefix is None else prefix
        if found is None:
            shown = ", ".join(sorted(shapes)[:6]) or "no tensors"
            raise UnrecognizedCheckpointError(
                tensors.name,
                f"no T5 encoder: expected a key ending in {T5_MARKER}; found {shown}",
            )
        config = t5_config(shapes, found, tensors.name)
        with torch.device("meta"):
            model = T5EncoderModel(config)
        for name, key in _plan(model, shapes, found, tensors.name).items():
            _put(model, name, tensors.read(key, dtype, device))
    # One embedding, as transformers ties it: the encoder reads `shared`.
    model.encoder.embed_tokens.weight = model.shared.weight
    model.eval()
    model.requires_grad_(False)
    return model


# ComfyUI pads SD 3's T5 prompt to 77 tokens and FLUX's to 256; longer prompts stay whole.
T5_MIN_LENGTH = {"sd3": 77, "flux": 256}


def t5_text_encoder(model: T5EncoderModel, family: str) -> T5TextEncoder:
    """The T5 handle for `family` ("sd3" or "flux"), with the shipped tokenizer."""
    from latentloom.models.handles import T5TextEncoder
    from latentloom.text.t5_tokenizer import t5_tokenizer

    if family not in T5_MIN_LENGTH:
        raise ValueError(
            f"T5 text encoders serve families {', '.join(T5_MIN_LENGTH)}; got {family!r}"
        )
    return T5TextEncoder(model=model, tokenizer=t5_tokenizer(), min_length=T5_MIN_LENGTH[family])
