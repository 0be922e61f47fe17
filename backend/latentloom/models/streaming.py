"""Fill modules built on the meta device with tensors streamed from safetensors files.

Modules are constructed under `torch.device("meta")`: parameters have shapes but no memory, and
no time is spent on random initialisation. Each tensor is then read from the file, renamed,
reshaped if its layout differs, converted to the target dtype and device, and assigned in place
of the meta parameter. No second state dict ever exists: peak memory is the loaded weights plus
the one tensor in flight.

Weight dtype (`weight_dtype.py`): a filler given a `WeightStorage` reads the Linear/Conv
weights in its storage dtype (fp8, fp16, ...) and the rest in the compute dtype, converting
each tensor as it is read, and installs the casting layers when it finishes. On the CPU, a
tensor wanted in the dtype the file stores it in is memory-mapped instead of copied
(`SafetensorsFile.map`).

Before any byte is read, the whole transfer is rehearsed on meta tensors: every missing,
unexpected or mis-shaped tensor is collected and reported together, and nothing is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from latentloom.models.errors import WeightMismatchError
from latentloom.models.keymap import Target
from latentloom.models.layout import Component
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.weight_dtype import WeightStorage, install_upcast, stored_narrow

_MAX_LISTED = 12


@dataclass(frozen=True)
class Transfer:
    """One tensor to move: `key` in `file`, going to `target`."""

    file: SafetensorsFile
    key: str
    target: Target


def transform(
    tensor: torch.Tensor, target: Target, shapes: Sequence[torch.Size | None]
) -> list[torch.Tensor]:
    """The original tensor as the diffusers tensor(s) of `target` (see `keymap.Transform`)."""
    expected = shapes[0] if shapes else None
    # A 1x1 conv weight [C, C, 1, 1] is the linear weight [C, C]; other shapes are reported.
    if (
        target.transform == "conv1x1"
        and expected is not None
        and tensor.numel() == expected.numel()
    ):
        return [tensor.reshape(expected)]
    if target.transform == "split_qkv" and tensor.shape[0] % 3 == 0:
        return list(tensor.chunk(3, dim=0))
    if target.transform == "transpose" and tensor.ndim == 2:
        return [tensor.t().contiguous()]
    if target.transform == "swap_halves" and tensor.shape[0] % 2 == 0:
        first, second = tensor.chunk(2, dim=0)
        return [torch.cat([second, first])]
    return [tensor]


class ModuleFiller:
    """Tracks which parameters and persistent buffers of one meta-built module are filled."""

    def __init__(
        self, component: Component, module: nn.Module, storage: WeightStorage | None = None
    ) -> None:
        self.component = component
        self.module = module
        self.expected = {key: value.shape for key, value in module.state_dict().items()}
        # Looked up once: `get_submodule` walks the dotted path again for each of ~1,100 puts.
        self.owners = dict(module.named_modules(remove_duplicate=False))
        self.seen: dict[str, str] = {}
        self.storage = storage
        self.narrow: frozenset[str] = frozenset()
        self.use(storage)

    def use(self, storage: WeightStorage | None) -> None:
        """Store weights as `storage` says (None: as the caller's dtype for the component)."""
        self.storage = storage
        upcasts = storage is not None and storage.upcasts
        self.narrow = stored_narrow(self.module) if upcasts else frozenset()

    def dtype_for(self, key: str, stored: torch.dtype, fallback: torch.dtype) -> torch.dtype:
        """The dtype module tensor `key` is held in; `stored` is the file's dtype for it."""
        if not stored.is_floating_point:
            return stored
        if self.storage is None:
            return fallback
        return self.storage.storage if key in self.narrow else self.storage.compute

    def read(
        self,
        file: SafetensorsFile,
        file_key: str,
        keys: Sequence[str],
        device: torch.device,
        fallback: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """File tensor `file_key`, going to module tensors `keys`, in their dtype on `device`:
        memory-mapped where that is the CPU and the file's dtype, else read and converted."""
        stored = file.dtype(file_key)
        dtype = self.dtype_for(keys[0], stored, fallback) if keys else stored
        if device.type == "cpu" and dtype == stored:
            mapped = file.map(file_key)
            if mapped is not None:
                return mapped
        return file.read(file_key, dtype=dtype, device=device)

    def check(self, key: str, shape: torch.Size, origin: str) -> str | None:
        """Record `key` as coming from `origin`; a problem message, or None when it fits."""
        expected = self.expected.get(key)
        if expected is None:
            return f"'{origin}' maps to '{key}', which the {self.component} does not have"
        if key in self.seen:
            return f"'{origin}' and '{self.seen[key]}' both give {self.component} '{key}'"
        self.seen[key] = origin
        if shape != expected:
            return (
                f"'{origin}' has shape {list(shape)} but the {self.component} built from the "
                f"detected config expects {list(expected)} for '{key}'"
            )
        return None

    def missing(self) -> list[str]:
        return [f"{self.component} '{key}'" for key in self.expected if key not in self.seen]

    def put(self, key: str, tensor: torch.Tensor) -> None:
        owner_name, _, leaf = key.rpartition(".")
        owner = self.owners[owner_name]
        if leaf in owner._parameters:
            setattr(owner, leaf, nn.Parameter(tensor, requires_grad=False))
        else:
            setattr(owner, leaf, tensor)

    def finish(self, device: torch.device) -> None:
        """Rebuild non-persistent buffers (never stored in files), then freeze for inference."""
        for name, buffer in list(self.module.named_buffers()):
            if not buffer.is_meta:
                continue
            if not name.endswith("position_ids"):
                raise RuntimeError(f"{self.component} buffer '{name}' has no value and no rule")
            positions = torch.arange(buffer.shape[-1], device=device).expand(buffer.shape)
            self.put(name, positions)
        if self.narrow:
            install_upcast(self.module)
        self.module.eval()
        self.module.requires_grad_(False)


def _problem_report(problems: list[str], missing: list[str]) -> str:
    lines = problems[:_MAX_LISTED]
    if len(problems) > len(lines):
        lines.append(f"and {len(problems) - len(lines)} more")
    if missing:
        shown = ", ".join(missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        lines.append(f"missing from the file: {shown}{more}")
    return "; ".join(lines)


def rehearse(
    transfers: Iterable[Transfer], fillers: Mapping[Component, ModuleFiller], source: Path
) -> None:
    """Check the whole transfer on meta tensors; raise with every problem, having read nothing."""
    problems: list[str] = []
    for item in transfers:
        if item.target.transform == "ignore":
            continue
        if item.target.transform == "unknown":
            problems.append(f"'{item.key}' has no {item.target.component} counterpart")
            continue
        filler = fillers[item.target.component]
        shape, dtype = item.file.shape(item.key), item.file.dtype(item.key)
        meta = torch.empty(shape, dtype=dtype, device="meta")
        shapes = [filler.expected.get(key) for key in item.target.keys]
        parts = transform(meta, item.target, shapes)
        if len(parts) != len(item.target.keys):
            problems.append(f"'{item.key}' with shape {list(meta.shape)} cannot be split in 3")
            continue
        for key, part in zip(item.target.keys, parts, strict=True):
            problem = filler.check(key, part.shape, item.key)
            if problem:
                problems.append(problem)
    missing = [name for filler in fillers.values() for name in filler.missing()]
    if problems or missing:
        raise WeightMismatchError(source, _problem_report(problems, missing))


def stream(
    transfers: Iterable[Transfer],
    fillers: Mapping[Component, ModuleFiller],
    device: torch.device,
    dtypes: Mapping[Component, torch.dtype | WeightStorage],
) -> None:
    """Read, convert and assign every tensor (after `rehearse` has passed), then finish.

    `dtypes`: per component, one dtype for every floating tensor, or a `WeightStorage`.
    """
    for component, choice in dtypes.items():
        if component in fillers:
            fillers[component].use(choice if isinstance(choice, WeightStorage) else None)
    for item in transfers:
        if not item.target.keys:
            continue
        filler = fillers[item.target.component]
        choice = dtypes[item.target.component]
        fallback = choice.compute if isinstance(choice, WeightStorage) else choice
        tensor = filler.read(item.file, item.key, item.target.keys, device, fallback)
        shapes = [filler.expected[key] for key in item.target.keys]
        for key, part in zip(item.target.keys, transform(tensor, item.target, shapes), strict=True):
            filler.put(key, part)
        del tensor
    for filler in fillers.values():
        filler.finish(device)
