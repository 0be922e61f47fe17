"""The manager fixes residency relies on, on small modules shaped like the real ones: a text
encoder's wrappers (streamed layer by layer), a tied embedding (T5), a model's own tensors
outside its blocks, labels, a per-call budget, entries that go with their model, and the
budget the engine's residency takes on each kind of device."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from latentloom.engine.residency import Residency
from latentloom.models.memory_manager import MemoryManager, Plan, top_level_blocks

CPU = torch.device("cpu")


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(10, 8)
        self.encoder = Encoder()


class TextModel(nn.Module):
    """transformers' shape: a model wrapping `text_model`, wrapping an encoder's ModuleList,
    with an embedding tied to an output head (T5 ties `shared` and `embed_tokens`) and a
    parameter of the model itself outside every block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.text_model = Inner()
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.text_model.embeddings.weight  # tied
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.text_model.encoder(self.text_model.embeddings(ids)) * self.scale
        return self.head(hidden)


def _device_copies(module: nn.Module, home: dict[str, int]) -> set[str]:
    return {
        n for n, p in module.named_parameters(remove_duplicate=False) if p.data_ptr() != home[n]
    }


def _homes(module: nn.Module) -> dict[str, int]:
    return {n: p.data_ptr() for n, p in module.named_parameters(remove_duplicate=False)}


def test_wrappers_are_opened_down_to_their_layers() -> None:
    model = TextModel()
    inner = model.text_model
    assert top_level_blocks(model) == [
        inner.embeddings,
        inner.encoder.layers[0],
        inner.encoder.layers[1],
        model.head,
    ]


def test_a_tied_model_streams_and_loads_with_one_copy_per_tensor() -> None:
    model = TextModel()
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        expected = model(ids)
    home = _homes(model)
    manager = MemoryManager(CPU, budget_bytes=1)
    assert manager.prepare([model], labels=["t5"]) == Plan(stream=("t5",))
    # Only the model's own parameter (also its first: what `.device` reads) waits on the
    # device; the blocks, the tied embedding's two included, come and go as they run.
    stays = {"scale"}
    assert _device_copies(model, home) == stays
    with torch.no_grad():
        assert torch.equal(model(ids), expected)
    assert _device_copies(model, home) == stays
    manager.offload_all()  # a streamed model's own tensors go home too
    assert _device_copies(model, home) == set()
    assert manager.prepare([model], budget_bytes=10**6) == Plan(load=("t5",))
    tied = model.head.weight
    assert tied is model.text_model.embeddings.weight and tied.data_ptr() != home["head.weight"]
    with torch.no_grad():
        assert torch.equal(model(ids), expected)


def test_the_block_holding_the_first_parameter_stays_while_streaming() -> None:
    """Callers read a model's device from its first parameter and put inputs there."""
    model = Encoder()
    home = _homes(model)
    manager = MemoryManager(CPU, budget_bytes=1)
    manager.prepare([model])
    assert _device_copies(model, home) == {"layers.0.weight", "layers.0.bias"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_streaming_moves_inputs_made_on_the_cpu() -> None:  # pragma: no cover - GPU only
    model = TextModel()
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        expected = model(ids)
    manager = MemoryManager(torch.device("cuda"), budget_bytes=1)
    assert manager.prepare([model], labels=["t5"]) == Plan(stream=("t5",))
    assert next(model.parameters()).device.type == "cuda"  # what `model.device` reads
    with torch.no_grad():
        output = model(ids)  # CPU ids: the embedding block moves them to the device
    assert output.device.type == "cuda"
    assert torch.allclose(output.cpu(), expected, atol=1e-5)
    assert model.text_model.encoder.layers[0].weight.device.type == "cpu"  # back home
    manager.offload_all()
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    built = nn.Linear(4, 4, device="cuda")  # a model a node made on the device
    manager.prepare([built], budget_bytes=10**6)
    manager.offload_all()
    assert built.weight.device.type == "cpu"  # its home is a CPU copy, not the device


def test_labels_stay_unique_and_entries_go_with_their_model() -> None:
    manager = MemoryManager(CPU, budget_bytes=10**6)
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    plan = manager.prepare([first, second], labels=["same.safetensors: unet"] * 2)
    assert plan.load == ("same.safetensors: unet", "same.safetensors: unet #2")
    home = weakref.ref(manager._entries[id(second)].home["weight"])
    manager.offload_all()
    del second
    gc.collect()
    assert list(manager.states()) == ["same.safetensors: unet"]
    assert home() is None  # the home tensor the entry kept is freed with the model


@pytest.mark.parametrize(
    ("device", "given", "budget"),
    [
        ("cpu", None, None),  # off: weights run where they were loaded
        ("cpu", 1234, 1234),  # the test stand-in: a second copy on the CPU
        ("cuda", None, 5_000),  # the cost budget's device memory
        ("cuda", 1234, 1234),  # a budget given wins
        ("mps", None, 9_000),  # unified memory: the cost budget's one pool
    ],
)
def test_which_budget_residency_uses(device: str, given: int | None, budget: int | None) -> None:
    residency = Residency.for_device(
        torch.device(device),
        device_budget_bytes=given,
        cost_device_bytes=5_000 if device == "cuda" else None,
        cost_memory_bytes=9_000,
    )
    manager = residency.manager
    assert (manager.budget_bytes if manager else None) == budget
    assert residency.status()["managed"] is (budget is not None)
