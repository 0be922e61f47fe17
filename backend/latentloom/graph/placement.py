"""Which loaded weights a node has on the device, when residency is managed.

When the engine manages residency (`engine/residency.py`: on CUDA / MPS, or with a device
budget), loaders leave weights at home on the CPU and, before each node runs, the models the
node's inputs hold are brought to the device: loaded while they fit the device budget less
the node's working set, streamed block by block when they do not (`models/memory_manager.py`).
Other models are offloaded as room is needed. So the device holds, while a node runs, the
weights of the models its inputs reach plus its working set, not every model the job loaded.

The cost walk cannot see modules, only specs, so it follows the weights along links:

* a node that loads weights (its `Cost.weights_bytes`) is one model, named by its node id,
  carried by its outputs of the types that hold modules (MODEL, CLIP, VAE, CONTROL_NET, ...);
* an output carries the models its node's inputs carry along `CARRIES`: an output carries the
  inputs of its own type (a LoRA's MODEL, a combined CONDITIONING), a CONDITIONING also its
  CONTROL_NET inputs (control attaches to the entries), a MODEL its IPADAPTER inputs (the
  patches hold the adapter), a GUIDER its MODEL and CONDITIONING. Text encoding hands on
  tensors, so a CONDITIONING never carries the CLIP that made it;
* a node holds what its linked inputs carry.

`place` then decides, as the manager's `plan_room` does for models not yet on the device,
which held models load and which stream; a streamed model counts its largest block (the one
its loader declares, else `STREAMED_BLOCK_SHARE` of its weights).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from latentloom.graph.cost import Cost
from latentloom.graph.workflow import Link, Workflow
from latentloom.node import NodeSpec, SocketType

# Outputs of these types hold tensors or settings, never the loader's modules.
DATA_TYPES = frozenset(
    {
        SocketType.CONDITIONING,
        SocketType.LATENT,
        SocketType.IMAGE,
        SocketType.MASK,
        SocketType.SIGMAS,
        SocketType.NOISE,
        SocketType.SAMPLER,
        SocketType.GUIDER,
        SocketType.CLIP_VISION_OUTPUT,
    }
)
# Input types whose models an output of a given type carries besides its own type's.
CARRIES: Mapping[str, frozenset[str]] = {
    SocketType.CONDITIONING: frozenset({SocketType.CONTROL_NET}),
    SocketType.MODEL: frozenset({SocketType.IPADAPTER}),
    SocketType.GUIDER: frozenset({SocketType.MODEL, SocketType.CONDITIONING}),
}
# A streamed model whose loader does not declare its largest block counts this share of its
# weights. Measured as the largest of `memory_manager.top_level_blocks` over the model's
# parameters at the published sizes: SDXL UNet 0.470 (up_blocks.0), CLIP-L 0.401, SD 1.5
# UNet 0.301, SD VAE 0.198, T5-XXL 0.041, FLUX.1 transformer 0.029; rounded up to the worst.
STREAMED_BLOCK_SHARE = 0.5


@dataclass(frozen=True)
class ModelWeights:
    """One loaded model as the cost walk knows it: the loader's node id and its bytes."""

    node: str
    bytes: int
    largest_block_bytes: int | None = None

    @property
    def block_bytes(self) -> int:
        """What streaming has on the device at once: its largest block."""
        if self.largest_block_bytes is not None:
            return min(self.largest_block_bytes, self.bytes)
        return int(self.bytes * STREAMED_BLOCK_SHARE)


Carries = dict[tuple[str, str], tuple[ModelWeights, ...]]  # (node, output) -> its models


@dataclass(frozen=True)
class Placement:
    """Where a node's held models are while it runs."""

    loaded: tuple[str, ...] = ()
    streamed: tuple[str, ...] = ()
    bytes: int = 0  # loaded models whole, streamed ones their largest block


def carried(
    output_type: str,
    inputs: Iterable[tuple[str, tuple[ModelWeights, ...]]],
    own: ModelWeights | None,
) -> tuple[ModelWeights, ...]:
    """The models an output of `output_type` carries, given (type, models) of each linked
    input and the model the node loads itself (None when it loads nothing)."""
    wanted = CARRIES.get(output_type, frozenset()) | {output_type}
    found: dict[str, ModelWeights] = {}
    for input_type, models in inputs:
        if input_type in wanted:
            found.update((model.node, model) for model in models)
    if own is not None and output_type not in DATA_TYPES:
        found[own.node] = own
    return tuple(found.values())


def held(inputs: Iterable[tuple[ModelWeights, ...]]) -> tuple[ModelWeights, ...]:
    """The distinct models a node's linked inputs carry, in input order."""
    found: dict[str, ModelWeights] = {}
    for models in inputs:
        for model in models:
            found.setdefault(model.node, model)
    return tuple(found.values())


def place(models: Iterable[ModelWeights], budget_bytes: int) -> Placement:
    """Load each model, in order, while the loaded ones fit `budget_bytes`; stream the rest."""
    loaded: list[str] = []
    streamed: list[str] = []
    fixed = blocks = 0
    for model in models:
        if fixed + model.bytes > budget_bytes:
            streamed.append(model.node)
            blocks += model.block_bytes
        else:
            loaded.append(model.node)
            fixed += model.bytes
    return Placement(tuple(loaded), tuple(streamed), fixed + blocks)


def linked_models(
    workflow: Workflow, node_id: str, spec: NodeSpec, carries: Carries
) -> list[tuple[str, tuple[ModelWeights, ...]]]:
    """(input type, the models its link carries) for each linked input of the node."""
    found = []
    for spec_input in spec.inputs:
        value = workflow.nodes[node_id].inputs.get(spec_input.name)
        if isinstance(value, Link):
            found.append((str(spec_input.type), carries.get((value.node, value.output), ())))
    return found


def carry(
    node_id: str,
    spec: NodeSpec,
    linked: list[tuple[str, tuple[ModelWeights, ...]]],
    cost: Cost,
    carries: Carries,
) -> tuple[ModelWeights, ...]:
    """Record what each output carries; returns the node's own model when no output hands it
    on (a pack's node that loads weights and uses them itself: they are on the device here)."""
    own = None
    if cost.weights_bytes:
        own = ModelWeights(node_id, cost.weights_bytes, cost.largest_block_bytes)
    handed_on = False
    for output in spec.outputs:
        models = carried(str(output.type), linked, own)
        carries[(node_id, output.name)] = models
        handed_on = handed_on or (own is not None and own in models)
    return (own,) if own is not None and not handed_on else ()
