"""Which models are on the compute device while a node runs: the engine's side of the manager.

On a CUDA or MPS device, loaders leave weights at home on the CPU (`NodeContext.weights_device`)
and, before each node runs, the executor hands `Residency.prepare` the node's inputs. The
models they hold are found by walking the handles (MODEL, CLIP, VAE, CONTROL_NET inside
conditioning, CLIP_VISION, UPSCALE_MODEL, IP-Adapter patches: every `nn.Module` reachable
through dataclass fields, tuples, lists and mappings), and the `MemoryManager` makes room for
them: load what fits, offload the least recently used, stream what the budget cannot hold.
The budget is the cost budget's device memory less the node's working set as the cost walk
estimated it, and a model's size is its stored weight bytes: the numbers validation used.

On the CPU the manager is off: weights are already where they run (memory-mapped where the
dtype allows), and a second copy would only cost memory. A test can still drive the real path
on the CPU by giving the engine a `device_budget_bytes`: "the device" is then a second copy of
the weights, as in the manager's own tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from latentloom.models.memory_manager import MemoryManager, Plan

HOME = torch.device("cpu")  # where weights live while not on the device
MANAGED_DEVICES = ("cuda", "mps")
_MAX_DEPTH = 10  # handles nest a few levels (conditioning -> entries -> control -> module)


def manages(device: torch.device, device_budget_bytes: int | None) -> bool:
    """Whether weights are moved on and off `device`: on CUDA / MPS, or when a budget is set."""
    return device.type in MANAGED_DEVICES or device_budget_bytes is not None


@dataclass(frozen=True)
class HeldModule:
    """A model a node's input holds, and a name for reports ("tiny.safetensors: unet")."""

    label: str
    module: nn.Module


def modules_in(inputs: Mapping[str, Any]) -> list[HeldModule]:
    """Every distinct top-level module the inputs hold (a module inside another is skipped)."""
    found: dict[int, HeldModule] = {}
    for name, value in inputs.items():
        for label, module in _walk(value, name, depth=0):
            found.setdefault(id(module), HeldModule(label, module))
    inner = {
        id(sub)
        for held in found.values()
        for sub in held.module.modules()
        if sub is not held.module
    }
    return [held for key, held in found.items() if key not in inner]


def _walk(value: Any, label: str, depth: int) -> Iterator[tuple[str, nn.Module]]:
    if depth > _MAX_DEPTH or isinstance(value, (str, bytes, int, float, torch.Tensor)):
        return
    if isinstance(value, nn.Module):
        yield label, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        source = getattr(value, "source", None)
        # A handle that names its file labels what it holds by that file.
        base = Path(source).name if isinstance(source, (str, Path)) and source else label
        for field in dataclasses.fields(value):
            yield from _walk(getattr(value, field.name), f"{base}: {field.name}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{label}[{index}]", depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{label}[{key}]", depth + 1)


State = Literal["resident", "streamed", "home"]


@dataclass(frozen=True)
class ModelResidency:
    name: str
    bytes: int
    state: State


@dataclass(frozen=True)
class ResidencyReport:
    """What one node's preparation moved, and where every known model is after it."""

    budget_bytes: int
    needed: tuple[str, ...]
    loaded: tuple[str, ...]
    offloaded: tuple[str, ...]
    streamed: tuple[str, ...]
    models: tuple[ModelResidency, ...]

    @property
    def resident(self) -> tuple[str, ...]:
        return tuple(model.name for model in self.models if model.state == "resident")

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_bytes": self.budget_bytes,
            "needed": list(self.needed),
            "loaded": list(self.loaded),
            "offloaded": list(self.offloaded),
            "streamed": list(self.streamed),
            "models": [dataclasses.asdict(model) for model in self.models],
        }


class Residency:
    """The engine's residency: off (`manager` None) or a manager over the compute device."""

    def __init__(self, manager: MemoryManager | None) -> None:
        self.manager = manager
        self.last: ResidencyReport | None = None

    @classmethod
    def for_device(
        cls,
        device: torch.device,
        *,
        device_budget_bytes: int | None,
        cost_device_bytes: int | None,
        cost_memory_bytes: int | None,
    ) -> Residency:
        """Off on the CPU unless a budget is given; else the budget given, or the cost
        budget's device memory (CUDA), or its one pool (MPS shares RAM with the host), or,
        for an engine without a cost budget, a share of the device's own memory."""
        if not manages(device, device_budget_bytes):
            return cls(None)
        budget = device_budget_bytes or cost_device_bytes or cost_memory_bytes
        return cls(MemoryManager(device, budget or _device_share(device)))

    @property
    def enabled(self) -> bool:
        return self.manager is not None

    def prepare(self, inputs: Mapping[str, Any], working_bytes: int = 0) -> ResidencyReport | None:
        """Put the models `inputs` hold on the device, leaving `working_bytes` for the node."""
        manager = self.manager
        if manager is None:
            return None
        held = modules_in(inputs)
        budget = max(manager.budget_bytes - working_bytes, 0)
        plan = manager.prepare(
            [h.module for h in held], labels=[h.label for h in held], budget_bytes=budget
        )
        needed = tuple(manager.name_of(h.module) for h in held)
        self.last = self._report(manager, budget, needed, plan)
        return self.last

    def offload_all(self) -> None:
        if self.manager is not None:
            self.manager.offload_all()

    def status(self) -> dict[str, Any]:
        """For /api/system: on or off, the budget, and where each known model is."""
        manager = self.manager
        if manager is None:
            return {"managed": False}
        return {
            "managed": True,
            "device": str(manager.device),
            "budget_bytes": manager.budget_bytes,
            "resident_bytes": manager.resident_bytes,
            "models": [dataclasses.asdict(m) for m in _models(manager)],
        }

    @staticmethod
    def _report(
        manager: MemoryManager, budget: int, needed: tuple[str, ...], plan: Plan
    ) -> ResidencyReport:
        return ResidencyReport(
            budget_bytes=budget,
            needed=needed,
            loaded=plan.load,
            offloaded=plan.offload,
            streamed=plan.stream,
            models=_models(manager),
        )


def _device_share(device: torch.device) -> int:
    """90% of an accelerator's memory (the cost budget's share), for engines built without
    a cost budget (benchmarks, scripts): loaders already put weights at home for them."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device.index or 0).total_memory * 0.9)
    recommended = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
    return int(recommended() * 0.9) if callable(recommended) else 8 * 2**30


def _models(manager: MemoryManager) -> tuple[ModelResidency, ...]:
    models = []
    for name, state in manager.states().items():
        where: State = "resident" if state.resident else "streamed" if state.streaming else "home"
        models.append(ModelResidency(name, state.size, where))
    return tuple(models)
