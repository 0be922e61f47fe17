"""Preprocessors as nodes: one declaration, one node shape, for our pack and any other.

A preprocessor turns a picture into what a ControlNet or T2I-Adapter reads: edges, lines,
depth, normals, a pose skeleton. Each one is declared as a `Preprocessor` (an id, a name, the
inputs it takes besides the image, and a `run` function), and `preprocessor_nodes` makes the nodes: IMAGE in,
IMAGE out, its own inputs between, in the "image/preprocessors" category, so the editor's search
and the ComfyUI table find them like any node and the registry checks them at start-up.

The node runs `run(ctx, image, **inputs)` once per image of the batch (`image` is [1, H, W, 3]
in 0..1), checking for cancellation between images and reporting progress, and checks what
comes back: a float32 [1, H', W', 3] tensor in 0..1, every image of a batch the same size. A
result that is not is an error naming the preprocessor, never clamped or resized quietly.
By default the output is declared the input's size; a preprocessor that resizes declares its
own `cost`.

A pack adds a model-based preprocessor the same way, from `latentloom.api` alone:

    from latentloom.api import DynamicChoices, Preprocessor, enum_input, preprocessor_nodes

    def estimate_depth(ctx, image, model):
        path = ctx.folders.resolve("checkpoints", model)  # confined to the model folder
        ...  # load (and keep) the model, run it on ctx.settings.device
        return depth.expand(1, height, width, 3)  # [1, H, W, 3] in 0..1

    NODES = preprocessor_nodes(
        Preprocessor(
            id="mypack.depth_anything",
            display_name="Depth Anything",
            run=estimate_depth,
            inputs=(enum_input("model", DynamicChoices("checkpoints")),),
            aliases=("DepthAnythingPreprocessor",),
        ),
    )
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from latentloom.engine.context import NodeContext
from latentloom.graph.cost import Cost, CostFunction, CostQuery
from latentloom.node import Input, NodeSpec, Output, SocketType, socket

CATEGORY = "image/preprocessors"
IMAGE = "image"
# Working memory of a run besides its output, in copies of one input image: the grey map,
# gradients, masks and a few float temporaries of the algorithms here.
WORKING_COPIES = 8

PreprocessFunction = Callable[..., torch.Tensor]


class PreprocessorError(ValueError):
    """A preprocessor returned something that is not an image; says which and what it was."""


@dataclass(frozen=True)
class Preprocessor:
    id: str  # the node id, "family.name"
    display_name: str
    run: PreprocessFunction  # (ctx, image [1, H, W, 3], **inputs) -> [1, H', W', 3] in 0..1
    inputs: tuple[Input, ...] = ()  # widgets, or sockets such as a MODEL
    aliases: tuple[str, ...] = ()
    description: str = ""
    version: int = 1  # bump when results change for the same inputs (it is in the cache key)
    cost: CostFunction | None = None  # None: same size as the input


def same_size_cost(query: CostQuery) -> Cost:
    """The output is the input's size; the run holds a few copies of one image meanwhile."""
    image = query.batch(IMAGE)
    if image is None:
        return Cost()
    one_image = image.image_bytes // max(1, image.count)
    return Cost(outputs={IMAGE: image}, host_working_bytes=WORKING_COPIES * one_image)


def check_result(preprocessor: str, result: object, size: tuple[int, int] | None) -> torch.Tensor:
    """`result` if it is one image of the shape every preprocessor returns, else an error."""
    expected = "a float32 tensor [1, height, width, 3] in 0..1"
    if not isinstance(result, torch.Tensor):
        raise PreprocessorError(
            f"{preprocessor} returned {type(result).__name__}; expected {expected}"
        )
    if (
        result.dtype != torch.float32
        or result.dim() != 4
        or result.shape[0] != 1
        or result.shape[3] != 3
    ):
        raise PreprocessorError(
            f"{preprocessor} returned a {result.dtype} tensor of shape {list(result.shape)}; "
            f"expected {expected}"
        )
    if not bool(torch.isfinite(result).all()) or bool((result < 0).any() | (result > 1).any()):
        low, high = float(result.nan_to_num().min()), float(result.nan_to_num().max())
        raise PreprocessorError(
            f"{preprocessor} returned values outside 0..1 (from {low} to {high}, or not "
            f"finite); expected {expected}"
        )
    if size is not None and tuple(result.shape[1:3]) != size:
        raise PreprocessorError(
            f"{preprocessor} returned a {result.shape[2]}x{result.shape[1]} image after a "
            f"{size[1]}x{size[0]} one; every image of a batch must come back the same size"
        )
    return result


def _node_function(preprocessor: Preprocessor) -> Callable[..., Mapping[str, Any]]:
    def run_batch(ctx: NodeContext, image: torch.Tensor, **inputs: Any) -> dict[str, object]:
        results: list[torch.Tensor] = []
        count = image.shape[0]
        for index in range(count):
            ctx.check_cancelled()
            result = preprocessor.run(ctx, image[index : index + 1], **inputs)
            size = tuple(results[0].shape[1:3]) if results else None
            results.append(check_result(preprocessor.id, result, size))  # type: ignore[arg-type]
            ctx.progress(index + 1, count)
        return {IMAGE: torch.cat(results)}

    # The registry checks a node function's parameters against its spec; this one takes each
    # input by name, which its signature says (its body forwards them all as one mapping).
    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in ("ctx", IMAGE, *(item.name for item in preprocessor.inputs))
    ]
    run_batch.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run_batch.__name__ = run_batch.__qualname__ = preprocessor.id.replace(".", "_")
    return run_batch


def preprocessor_node(preprocessor: Preprocessor) -> NodeSpec:
    """The node for one preprocessor (see the module doc for its shape)."""
    if any(item.name == IMAGE for item in preprocessor.inputs):
        raise PreprocessorError(f"{preprocessor.id}: an input may not be called {IMAGE!r}")
    return NodeSpec(
        id=preprocessor.id,
        display_name=preprocessor.display_name,
        category=CATEGORY,
        description=preprocessor.description,
        aliases=preprocessor.aliases,
        inputs=(socket(IMAGE, SocketType.IMAGE), *preprocessor.inputs),
        outputs=(Output(IMAGE, SocketType.IMAGE),),
        function=_node_function(preprocessor),
        version=preprocessor.version,
        cost=preprocessor.cost or same_size_cost,
    )


def preprocessor_nodes(*preprocessors: Preprocessor | Iterable[Preprocessor]) -> list[NodeSpec]:
    """Nodes for preprocessors, in order: a pack's `NODES` (or part of it)."""
    flat: list[Preprocessor] = []
    for item in preprocessors:
        flat.extend([item] if isinstance(item, Preprocessor) else item)
    return [preprocessor_node(preprocessor) for preprocessor in flat]
