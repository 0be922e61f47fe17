"""Which models live on the compute device, and moving them there and back.

The policy is a pure function, `plan_room`: given every known model's size, whether it is
resident and when it was last used, the device budget and the models the next node needs, it
says what to load, what to offload (least recently used first, never a needed model) and
what to stream (a needed model bigger than the whole budget less the other needed models).
Sizes are the stored weight bytes (`weight_dtype.weight_bytes`), the same numbers the cost
budget estimates from file sizes (`weight_dtype.weight_storage_bytes`).

The mechanics, `MemoryManager`, keep each model's weights at home on the CPU (the tensors the
loader made: memory-mapped file pages where the dtype allowed) and give the device a copy:
loading points each parameter at a device copy of its home tensor, offloading points it back,
so offloading copies nothing and weight patches (applied and restored exactly around each
sampling run) never need writing back. Streaming puts hooks on each top-level block (the
children of the model and of its ModuleLists): a block's weights go to the device just before
it runs and back home after, so a model bigger than the device runs with one block on it.

Nothing here is specific to CUDA: on the CPU, "the device" is a second copy of the weights,
which is how the tests watch residency (a resident tensor's storage is not its home's).

Entries hold their module weakly: when the output cache lets a model go, its entry (and the
home tensors it keeps) goes too. Tensors shared inside a model (T5's tied embedding) are
found under every name they have and moved once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from latentloom.models.weight_dtype import weight_bytes


@dataclass(frozen=True)
class ModelState:
    """One known model: its stored bytes, whether it is on the device, its last use (a tick)."""

    size: int
    resident: bool
    last_used: int
    streaming: bool = False  # not resident, but running block by block through hooks


@dataclass(frozen=True)
class Plan:
    load: tuple[str, ...] = ()
    offload: tuple[str, ...] = ()
    stream: tuple[str, ...] = ()


def plan_room(models: Mapping[str, ModelState], needed: Sequence[str], budget: int) -> Plan:
    """What to move so that `needed` can run within `budget` bytes on the device."""
    wanted = list(dict.fromkeys(needed))
    used = sum(state.size for state in models.values() if state.resident)
    victims = sorted(
        (name for name, state in models.items() if state.resident and name not in wanted),
        key=lambda name: models[name].last_used,
    )
    load: list[str] = []
    offload: list[str] = []
    stream: list[str] = []
    # Room the needed models can have at most: the budget less the needed ones already there.
    fixed = sum(models[name].size for name in wanted if models[name].resident)
    for name in wanted:
        state = models[name]
        if state.resident:
            continue
        if fixed + state.size > budget:
            stream.append(name)
            continue
        while used + state.size > budget and victims:
            victim = victims.pop(0)
            offload.append(victim)
            used -= models[victim].size
        load.append(name)
        used += state.size
        fixed += state.size
    return Plan(load=tuple(load), offload=tuple(offload), stream=tuple(stream))


def top_level_blocks(module: nn.Module) -> list[nn.Module]:
    """The blocks streaming moves one at a time: children, and the items of ModuleLists.

    A child that only wraps a ModuleList somewhere inside (transformers' `text_model`,
    `encoder`) is opened instead of moved whole, so a text encoder streams layer by layer.
    """
    blocks: list[nn.Module] = []
    for child in module.children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)) and len(child) > 0:
            blocks.extend(child.children())
        elif _holds_module_list(child):
            blocks.extend(top_level_blocks(child))
        else:
            blocks.append(child)
    return blocks


def _holds_module_list(module: nn.Module) -> bool:
    return any(
        isinstance(inner, nn.ModuleList) and len(inner) > 0
        for name, inner in module.named_modules()
        if name
    )


@dataclass
class _Entry:
    module: weakref.ref[nn.Module]
    name: str
    size: int
    home: dict[str, torch.Tensor]  # tensor name -> the CPU tensor the loader made
    resident: bool = False
    last_used: int = 0
    hooks: list[RemovableHandle] = field(default_factory=list)

    @property
    def streaming(self) -> bool:
        return bool(self.hooks)


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    # Every name of a shared (tied) tensor: a block may reach it under a name the whole
    # model's deduplicated listing would not give.
    named: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
    named.update(dict(module.named_buffers(remove_duplicate=False)))
    return named


def _homes(module: nn.Module) -> dict[str, torch.Tensor]:
    """The CPU tensors a model's weights return to: the loader's own where they are on the
    CPU; a CPU copy of a model first seen elsewhere (one a node built on the device)."""
    copies: dict[int, torch.Tensor] = {}
    home: dict[str, torch.Tensor] = {}
    for name, tensor in _tensors(module).items():
        data = tensor.data
        if data.device.type != "cpu":
            data = copies.setdefault(id(tensor), data.to("cpu"))  # tied tensors: one copy
        home[name] = data
    return home


def _place(
    module: nn.Module, home: Mapping[str, torch.Tensor], device: torch.device | None
) -> None:
    """Point every tensor of `module` at a device copy of its home (device None: at home)."""
    moved: set[int] = set()
    for name, tensor in _tensors(module).items():
        source = home.get(name)
        if source is not None and id(tensor) not in moved:
            moved.add(id(tensor))  # a tied tensor gets one copy, not one per name
            tensor.data = source if device is None else source.to(device, copy=True)


class MemoryManager:
    """One per engine: knows each model's size and residency; see the module docstring."""

    def __init__(self, device: torch.device, budget_bytes: int) -> None:
        self.device = device
        self.budget_bytes = budget_bytes
        self._entries: dict[int, _Entry] = {}
        self._tick = 0
        self._count = 0  # entries ever made: default names stay unique after pruning

    def _entry(self, module: nn.Module, label: str | None = None) -> _Entry:
        key = id(module)
        entry = self._entries.get(key)
        if entry is None or entry.module() is not module:
            home = _homes(module)
            entries = self._entries

            def forget(_: object) -> None:
                # The model is gone (the cache let it go): so are its home tensors.
                if key in entries and entries[key].module() is None:
                    del entries[key]

            self._count += 1
            name = self._unique(label or f"model-{self._count - 1}")
            entry = _Entry(weakref.ref(module, forget), name, 0, home)
            entry.size = weight_bytes(module)
            self._entries[key] = entry
        return entry

    def _unique(self, label: str) -> str:
        taken = {e.name for e in self._entries.values()}
        if label not in taken:
            return label
        return next(
            f"{label} #{n}" for n in range(2, len(taken) + 3) if f"{label} #{n}" not in taken
        )

    def name_of(self, module: nn.Module) -> str:
        return self._entry(module).name

    def is_streaming(self, module: nn.Module) -> bool:
        return self._entry(module).streaming

    def states(self) -> dict[str, ModelState]:
        return {
            e.name: ModelState(e.size, e.resident, e.last_used, e.streaming)
            for e in self._entries.values()
            if e.module() is not None
        }

    def is_resident(self, module: nn.Module) -> bool:
        return self._entry(module).resident

    @property
    def resident_bytes(self) -> int:
        return sum(e.size for e in self._entries.values() if e.resident and e.module())

    def prepare(
        self,
        modules: Sequence[nn.Module],
        *,
        labels: Sequence[str] | None = None,
        budget_bytes: int | None = None,
    ) -> Plan:
        """Make room for `modules` and put them on the device (or stream them); the plan.

        `labels` name models seen for the first time (in reports and plans); `budget_bytes`
        replaces the manager's budget for this call (the device less a node's working set).
        """
        names = labels if labels is not None else [None] * len(modules)
        entries = [self._entry(module, label) for module, label in zip(modules, names, strict=True)]
        self._tick += 1
        for entry in entries:
            entry.last_used = self._tick
        budget = self.budget_bytes if budget_bytes is None else budget_bytes
        plan = plan_room(self.states(), [e.name for e in entries], budget)
        by_name = {e.name: e for e in self._entries.values()}
        for name in plan.offload:
            self._offload(by_name[name])
        for name in plan.load:
            self._load(by_name[name])
        for name in plan.stream:
            self._stream(by_name[name])
        return plan

    def offload_all(self) -> None:
        for entry in list(self._entries.values()):
            self._offload(entry)

    def _load(self, entry: _Entry) -> None:
        module = entry.module()
        if module is None:
            return
        self._unhook(entry)
        _place(module, entry.home, self.device)
        entry.resident = True

    def _offload(self, entry: _Entry) -> None:
        module = entry.module()
        # A streamed model keeps its own (non-block) tensors on the device: they go home too.
        was_on_device = entry.resident or entry.streaming
        self._unhook(entry)
        if module is not None and was_on_device:
            _place(module, entry.home, None)
        entry.resident = False

    def _unhook(self, entry: _Entry) -> None:
        for hook in entry.hooks:
            hook.remove()
        entry.hooks.clear()

    def _stream(self, entry: _Entry) -> None:
        module = entry.module()
        if module is None or entry.hooks:
            return
        prefixes = {id(m): name for name, m in module.named_modules(remove_duplicate=False)}
        # Callers ask a model where it runs by its first parameter (transformers' and
        # diffusers' `.device`, and ours) and put their inputs there: the block holding it
        # stays on the device, with the tensors of the model itself (not of a block).
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        in_blocks: set[int] = set()
        for block in top_level_blocks(module):
            prefix = prefixes[id(block)]
            tensors = _tensors(block)
            if any(tensor is first for tensor in tensors.values()):
                continue
            in_blocks.update(id(t) for t in tensors.values())
            home = {n: entry.home[f"{prefix}.{n}" if prefix else n] for n in tensors}
            mover = _mover(home, self.device)
            entry.hooks.append(block.register_forward_pre_hook(mover, with_kwargs=True))
            entry.hooks.append(block.register_forward_hook(_returner(home)))
        rest = {n: t for n, t in _tensors(module).items() if id(t) not in in_blocks}
        _place_named(rest, entry.home, self.device)


def _place_named(
    tensors: Mapping[str, torch.Tensor], home: Mapping[str, torch.Tensor], device: torch.device
) -> None:
    moved: set[int] = set()
    for name, tensor in tensors.items():
        if id(tensor) not in moved:
            moved.add(id(tensor))
            tensor.data = home[name].to(device, copy=True)


def _mover(home: dict[str, torch.Tensor], device: torch.device) -> Callable[..., Any]:
    def hook(
        block: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        _place(block, home, device)
        # Inputs made where the model's other tensors are still at home go to the device.
        return _to_device(args, device), _to_device(kwargs, device)

    return hook


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value if value.device == device else value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(item, device) for item in value)
    if isinstance(value, list):
        return [_to_device(item, device) for item in value]
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value


def _returner(home: dict[str, torch.Tensor]) -> Callable[[nn.Module, object, object], None]:
    def hook(block: nn.Module, args: object, output: object) -> None:
        _place(block, home, None)

    return hook
