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
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
    """The blocks streaming moves one at a time: children, and the items of ModuleLists."""
    blocks: list[nn.Module] = []
    for child in module.children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)) and len(child) > 0:
            blocks.extend(child.children())
        else:
            blocks.append(child)
    return blocks


@dataclass
class _Entry:
    module: weakref.ref[nn.Module]
    name: str
    size: int
    home: dict[str, torch.Tensor]  # tensor name -> the CPU tensor the loader made
    resident: bool = False
    last_used: int = 0
    hooks: list[RemovableHandle] = field(default_factory=list)


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    named: dict[str, torch.Tensor] = dict(module.named_parameters())
    named.update(dict(module.named_buffers()))
    return named


def _place(
    module: nn.Module, home: Mapping[str, torch.Tensor], device: torch.device | None
) -> None:
    """Point every tensor of `module` at a device copy of its home (device None: at home)."""
    for name, tensor in _tensors(module).items():
        source = home.get(name)
        if source is not None:
            tensor.data = source if device is None else source.to(device, copy=True)


class MemoryManager:
    """One per engine: knows each model's size and residency; see the module docstring."""

    def __init__(self, device: torch.device, budget_bytes: int) -> None:
        self.device = device
        self.budget_bytes = budget_bytes
        self._entries: dict[int, _Entry] = {}
        self._tick = 0

    def _entry(self, module: nn.Module) -> _Entry:
        entry = self._entries.get(id(module))
        if entry is None or entry.module() is not module:
            home = {name: tensor.data for name, tensor in _tensors(module).items()}
            entry = _Entry(weakref.ref(module), f"model-{len(self._entries)}", 0, home)
            entry.size = weight_bytes(module)
            self._entries[id(module)] = entry
        return entry

    def states(self) -> dict[str, ModelState]:
        return {
            e.name: ModelState(e.size, e.resident, e.last_used)
            for e in self._entries.values()
            if e.module() is not None
        }

    def is_resident(self, module: nn.Module) -> bool:
        return self._entry(module).resident

    @property
    def resident_bytes(self) -> int:
        return sum(e.size for e in self._entries.values() if e.resident and e.module())

    def prepare(self, modules: Sequence[nn.Module]) -> Plan:
        """Make room for `modules` and put them on the device (or stream them); the plan."""
        entries = [self._entry(module) for module in modules]
        self._tick += 1
        for entry in entries:
            entry.last_used = self._tick
        plan = plan_room(self.states(), [e.name for e in entries], self.budget_bytes)
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
        self._unhook(entry)
        if module is not None and entry.resident:
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
        # Tensors of the model itself (not of a block) stay on the device while it streams.
        in_blocks: set[int] = set()
        for block in top_level_blocks(module):
            in_blocks.update(id(t) for t in _tensors(block).values())
            home = {n: entry.home[_full_name(module, block, n)] for n in _tensors(block)}
            entry.hooks.append(block.register_forward_pre_hook(_mover(home, self.device)))
            entry.hooks.append(block.register_forward_hook(_returner(home)))
        for name, tensor in _tensors(module).items():
            if id(tensor) not in in_blocks:
                tensor.data = entry.home[name].to(self.device, copy=True)


def _full_name(root: nn.Module, block: nn.Module, name: str) -> str:
    for prefix, module in root.named_modules():
        if module is block:
            return f"{prefix}.{name}" if prefix else name
    raise LookupError("block is not part of the model")


def _mover(
    home: dict[str, torch.Tensor], device: torch.device
) -> Callable[[nn.Module, object], None]:
    def hook(block: nn.Module, args: object) -> None:
        _place(block, home, device)

    return hook


def _returner(home: dict[str, torch.Tensor]) -> Callable[[nn.Module, object, object], None]:
    def hook(block: nn.Module, args: object, output: object) -> None:
        _place(block, home, None)

    return hook
