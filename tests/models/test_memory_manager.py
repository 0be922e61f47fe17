"""The memory manager: the room-making policy as a table, and the mechanics on the CPU, where
"the device" is a second copy of the weights (a resident tensor's storage is not its home's).
A CUDA run of the same mechanics is skipped without a GPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentloom.models.memory_manager import (
    MemoryManager,
    ModelState,
    Plan,
    plan_room,
    top_level_blocks,
)

CPU = torch.device("cpu")


def _states(**models: tuple[int, bool, int]) -> dict[str, ModelState]:
    return {name: ModelState(*values) for name, values in models.items()}


@pytest.mark.parametrize(
    ("models", "needed", "budget", "plan"),
    [
        # Already there: nothing moves.
        (_states(a=(4, True, 1)), ["a"], 10, Plan()),
        # Fits beside what is there.
        (_states(a=(4, True, 1), b=(5, False, 0)), ["b"], 10, Plan(load=("b",))),
        # Needs room: the least recently used goes first, and only as much as needed.
        (
            _states(a=(4, True, 1), b=(4, True, 2), c=(5, False, 0)),
            ["c"],
            10,
            Plan(load=("c",), offload=("a",)),
        ),
        (
            _states(a=(4, True, 3), b=(4, True, 2), c=(9, False, 0)),
            ["c"],
            10,
            Plan(load=("c",), offload=("b", "a")),
        ),
        # A needed model is never offloaded to make room for another.
        (
            _states(a=(6, True, 1), b=(6, False, 0)),
            ["a", "b"],
            10,
            Plan(stream=("b",)),
        ),
        # Bigger than the whole budget: streamed, nothing offloaded for it.
        (_states(a=(4, True, 1), big=(20, False, 0)), ["big"], 10, Plan(stream=("big",))),
        # Two needed models that fit together after offloading an idle one.
        (
            _states(idle=(6, True, 1), a=(3, False, 0), b=(3, False, 0)),
            ["a", "b"],
            10,
            Plan(load=("a", "b"), offload=("idle",)),
        ),
    ],
)
def test_plan_room(
    models: dict[str, ModelState], needed: list[str], budget: int, plan: Plan
) -> None:
    assert plan_room(models, needed, budget) == plan


def _model(seed: int, blocks: int = 3, width: int = 16) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(*(nn.Linear(width, width) for _ in range(blocks))).eval()


def _on_device(module: nn.Module, home: dict[str, int]) -> set[str]:
    """Names of tensors whose storage is not their home's (a device copy)."""
    return {n for n, p in module.named_parameters() if p.data_ptr() != home[n]}


def _homes(module: nn.Module) -> dict[str, int]:
    return {name: p.data_ptr() for name, p in module.named_parameters()}


MODEL_BYTES = 3 * (16 * 16 + 16) * 4  # three fp32 Linear(16, 16)


def test_loads_and_offloads_least_recently_used() -> None:
    a, b = _model(0), _model(1)
    home_a, home_b = _homes(a), _homes(b)
    manager = MemoryManager(CPU, budget_bytes=MODEL_BYTES + 100)
    assert manager.prepare([a]) == Plan(load=("model-0",))
    assert _on_device(a, home_a) == set(home_a) and manager.resident_bytes == MODEL_BYTES
    plan = manager.prepare([b])
    assert plan == Plan(load=("model-1",), offload=("model-0",))
    assert _on_device(a, home_a) == set()  # back home: the very tensors the loader made
    assert _on_device(b, home_b) == set(home_b)
    assert manager.is_resident(b) and not manager.is_resident(a)


def test_results_are_the_same_on_and_off_the_device() -> None:
    model = _model(2)
    x = torch.randn(2, 16)
    with torch.no_grad():
        expected = model(x)
        manager = MemoryManager(CPU, budget_bytes=10 * MODEL_BYTES)
        manager.prepare([model])
        resident = model(x)
        manager.offload_all()
        after = model(x)
    assert torch.equal(resident, expected) and torch.equal(after, expected)


def test_a_model_bigger_than_the_budget_streams_one_block_at_a_time() -> None:
    model = _model(3, blocks=4)
    home = _homes(model)
    x = torch.randn(2, 16)
    with torch.no_grad():
        expected = model(x)
    manager = MemoryManager(CPU, budget_bytes=MODEL_BYTES // 2)
    seen: list[set[str]] = []
    for block in top_level_blocks(model):
        # Registered before the manager's: forward hooks run in order, so this one sees the
        # block after its move to the device and before its move back.
        block.register_forward_hook(lambda *_: seen.append(_on_device(model, home)))
    assert manager.prepare([model]) == Plan(stream=("model-0",))
    with torch.no_grad():
        streamed = model(x)
    assert torch.equal(streamed, expected)
    # The first block (the model's first parameter: where callers read its device) stays.
    pinned = {"0.weight", "0.bias"}
    assert seen == [pinned] + [pinned | {f"{i}.weight", f"{i}.bias"} for i in range(1, 4)]
    assert _on_device(model, home) == pinned  # every other block went back after running
    manager.prepare([])
    manager.offload_all()
    with torch.no_grad():
        assert torch.equal(model(x), expected)  # hooks removed: runs plainly at home


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_load_offload_and_stream() -> None:  # pragma: no cover - GPU machines only
    cuda = torch.device("cuda")
    small, big = _model(4), _model(5, blocks=4)
    x = torch.randn(2, 16)
    with torch.no_grad():
        expected = big(x)
    manager = MemoryManager(cuda, budget_bytes=MODEL_BYTES + 100)
    manager.prepare([small])
    assert small[0].weight.device.type == "cuda"
    plan = manager.prepare([big])
    assert plan.stream == ("model-1",) and plan.offload == ()
    with torch.no_grad():
        assert torch.allclose(big(x.to(cuda)).cpu(), expected, atol=1e-5)
    assert big[0].weight.device.type == "cuda"  # the first block stays
    assert big[1].weight.device.type == "cpu"
