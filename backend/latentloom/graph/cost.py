"""What a node will cost, declared by its spec and estimated before anything runs.

A spec's optional `cost` function gets a `CostQuery`: the node's literal inputs (defaults
filled in, values arriving from value nodes resolved), the estimates its upstream outputs
carry (the size of a LATENT or IMAGE batch), and the sizes of model files. It returns a
`Cost`: estimates of its own outputs, the model weights it loads, the working memory it needs
while it runs, its work in megapixel-steps, and refusals of inputs past an explicit bound.
`graph/budget.py` adds these up along the plan. Cost functions are pure and make no tensors,
so a pack can declare its nodes' costs the same way the built-in nodes do.

Byte counts follow what the engine holds: latents and images are float32 on the CPU between
nodes (a latent has 4 channels at 1/8 of the image side, an image 3 channels at full size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

FLOAT32_BYTES = 4
LATENT_CHANNELS = 4
LATENT_DOWNSCALE = 8
IMAGE_CHANNELS = 3
GIB = 2**30


@dataclass(frozen=True)
class Batch:
    """A LATENT or IMAGE batch: the image size in pixels and how many images (frames too)."""

    width: int
    height: int
    count: int
    origin: str  # the node whose inputs set this size: the one to change when it is too big

    @property
    def latent_pixels(self) -> int:
        """Latent pixels of one image."""
        return (self.width // LATENT_DOWNSCALE) * (self.height // LATENT_DOWNSCALE)

    @property
    def latent_bytes(self) -> int:
        return self.count * LATENT_CHANNELS * self.latent_pixels * FLOAT32_BYTES

    @property
    def image_bytes(self) -> int:
        return self.count * self.height * self.width * IMAGE_CHANNELS * FLOAT32_BYTES

    @property
    def megapixels(self) -> float:
        """Megapixels of the whole batch."""
        return self.count * self.width * self.height / 1e6

    def describe(self) -> str:
        return f"{self.width}x{self.height}x{self.count}"


@dataclass(frozen=True)
class Value:
    """A widget value travelling along a link (from a value node), known before the run."""

    value: Any


Estimate = Batch | Value


class ModelFiles(Protocol):
    """Sizes read from the configured folders; None when the file is not there."""

    def size(self, folder: str, name: str) -> int | None:
        """Bytes of a model file (a diffusers folder: its weight files together)."""
        ...

    def image_size(self, name: str) -> tuple[int, int] | None:
        """(width, height) of an image in the input folder."""
        ...


@dataclass(frozen=True)
class Refusal:
    """An input past an explicit bound; the message says the number, the bound and the way out."""

    input: str
    message: str


@dataclass(frozen=True)
class Cost:
    outputs: Mapping[str, Estimate] = field(default_factory=dict)
    weights_bytes: int = 0  # model weights this node loads; they stay resident for the run
    # The largest block of those weights that streaming moves to the device at once, when a
    # model is bigger than the device budget (`graph/placement.py`); None: not known, a
    # share of the weights is assumed.
    largest_block_bytes: int | None = None
    working_bytes: int = 0  # transient memory on the compute device (activations, copies)
    host_working_bytes: int = 0  # transient host memory besides the outputs (joins, 8-bit copies)
    work: float = 0.0  # megapixel-steps: denoising steps x megapixels of the batch
    refusals: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class CostQuery:
    node_id: str
    literals: Mapping[str, Any]
    upstream: Mapping[str, Estimate]  # linked inputs whose source output has an estimate
    files: ModelFiles
    compute_bytes: int = 2  # bytes per number the models compute in: 2 (fp16), 4 on the CPU
    # Bytes of the budget this node's working set may use: the budget of the pool it works in,
    # less the weights loaded so far, or under managed residency the weights of the models
    # this node holds (and, where host and device share memory, the outputs held so far). None when no budget applies. A node with a lower-memory way to run (VAE
    # Decode tiles) picks it from this; at run time it reads the same number as
    # `NodeContext.memory_left`.
    memory_left: int | None = None

    def weights(self, file_bytes: int) -> int:
        """Memory for weights stored in fp16 (as checkpoints usually are), as the engine holds
        them: their size, or twice it when it computes in fp32."""
        return file_bytes * max(1, self.compute_bytes // 2)

    def batch(self, name: str) -> Batch | None:
        estimate = self.upstream.get(name)
        return estimate if isinstance(estimate, Batch) else None

    def number(self, name: str) -> float | None:
        value = self.literals.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value

    def integer(self, name: str) -> int | None:
        value = self.number(name)
        return int(value) if value is not None else None


CostFunction = Callable[[CostQuery], Cost]


def format_bytes(count: float) -> str:
    """Bytes as the budget messages show them: GiB above 1 GiB, else MiB, one decimal."""
    if count >= GIB:
        return f"{count / GIB:.1f} GiB"
    return f"{count / 2**20:.1f} MiB"
