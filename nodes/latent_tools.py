"""Latent tools over batches and values: batch, from batch, repeat, add, subtract, multiply.

They follow ComfyUI's nodes of the same names (inputs, order and results), so its workflows
import unchanged. Where two latents meet, the second is fitted to the first the way ComfyUI
does it: cropped to the first's aspect ratio about its centre, resized bilinearly, and its
batch cycled or cut to the first's length ("repeat to batch size").

Noise masks (where a sampler may change the latent) follow the images they belong to: the
batch nodes slice, repeat and join them with the latents, a single mask ([1, H, W]) stays
single because it applies to every image. The arithmetic nodes keep the first latent's mask,
as ComfyUI does. Latent Batch differs from ComfyUI, which keeps only the first
latent's mask for the joined batch (so the second batch's images would be masked by it): here
the masks are joined image by image, a latent without one contributing "change everywhere".
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from latentloom.api import (
    MAX_BATCH,
    SD15,
    Batch,
    Cost,
    CostQuery,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    float_input,
    int_input,
    repeat_to_batch,
    socket,
)

Operation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[..., h, w] cropped to the target's aspect about the centre, then resized bilinearly."""
    old_height, old_width = tensor.shape[-2:]
    if (old_height, old_width) == (height, width):
        return tensor
    old_aspect, new_aspect = old_width / old_height, width / height
    left = top = 0
    if old_aspect > new_aspect:
        left = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        top = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    cropped = tensor[..., top : old_height - top, left : old_width - left]
    flat = cropped.reshape(-1, 1, *cropped.shape[-2:]) if tensor.ndim == 3 else cropped
    resized = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    return resized.reshape(*tensor.shape[:-2], height, width)


def _same_channels(first: torch.Tensor, second: torch.Tensor, name: str) -> None:
    if first.shape[1] != second.shape[1]:
        raise ValueError(
            f"input '{name}' has {second.shape[1]} latent channels, the other latent "
            f"{first.shape[1]}; they come from different model families"
        )


def _downscale(latent: Latent) -> int:
    return (latent.family or SD15).downscale


def _masks_joined(first: Latent, second: Latent) -> torch.Tensor | None:
    """One mask per image of the joined batch, at the first mask's resolution (else the
    first latent's pixel size); a latent without a mask may change everywhere (ones)."""
    if first.noise_mask is None and second.noise_mask is None:
        return None
    if first.noise_mask is not None:
        size = tuple(first.noise_mask.shape[-2:])
    else:
        size = tuple(side * _downscale(first) for side in first.samples.shape[-2:])
    parts = []
    for latent in (first, second):
        mask = latent.noise_mask
        mask = torch.ones(1, *size) if mask is None else fit(mask.float(), *size)
        parts.append(repeat_to_batch(mask, latent.samples.shape[0]))
    return torch.cat(parts)


def _refused(name: str, message: str) -> ValueError:
    """A run-time refusal; validation names the input itself (the same message, refused earlier
    when the batch size is known)."""
    return ValueError(f"input '{name}': {message}")


def _batch_bound(count: int, what: str) -> str:
    return f"{what} makes a batch of {count}; the most is {MAX_BATCH}"


def latent_batch(ctx: NodeContext, samples1: Latent, samples2: Latent) -> dict[str, object]:
    first, second = samples1.samples, samples2.samples
    _same_channels(first, second, "samples2")
    count = first.shape[0] + second.shape[0]
    if count > MAX_BATCH:
        raise _refused("samples2", _batch_bound(count, "joining the two batches"))
    joined = torch.cat((first, fit(second, *first.shape[-2:])))
    family = samples1.family or samples2.family
    return {"latent": Latent(joined, family, _masks_joined(samples1, samples2))}


def latent_from_batch(
    ctx: NodeContext, samples: Latent, batch_index: int, length: int
) -> dict[str, object]:
    count = samples.samples.shape[0]
    if batch_index >= count:
        raise _refused("batch_index", _index_past_batch(batch_index, count))
    end = min(count, batch_index + length)  # like a slice: at most `length` images
    mask = samples.noise_mask
    if mask is not None and mask.shape[0] > 1:
        mask = repeat_to_batch(mask, count)[batch_index:end].clone()
    picked = samples.samples[batch_index:end].clone()
    return {"latent": Latent(picked, samples.family, mask)}


def _index_past_batch(batch_index: int, count: int) -> str:
    return f"{batch_index} is past the batch of {count} (indices 0 to {count - 1})"


def repeat_latent_batch(ctx: NodeContext, samples: Latent, amount: int) -> dict[str, object]:
    count = samples.samples.shape[0]
    if count * amount > MAX_BATCH:
        raise _refused("amount", _batch_bound(count * amount, f"{count} x {amount}"))
    repeated = samples.samples.repeat(amount, 1, 1, 1)
    mask = samples.noise_mask
    if mask is not None and mask.shape[0] > 1:
        mask = repeat_to_batch(mask, count).repeat(amount, 1, 1)
    return {"latent": Latent(repeated, samples.family, mask)}


def _arithmetic(samples1: Latent, samples2: Latent, operation: Operation) -> dict[str, object]:
    first = samples1.samples
    _same_channels(first, samples2.samples, "samples2")
    second = repeat_to_batch(fit(samples2.samples, *first.shape[-2:]), first.shape[0])
    result = operation(first, second)
    return {"latent": Latent(result, samples1.family or samples2.family, samples1.noise_mask)}


def latent_add(ctx: NodeContext, samples1: Latent, samples2: Latent) -> dict[str, object]:
    return _arithmetic(samples1, samples2, torch.add)


def latent_subtract(ctx: NodeContext, samples1: Latent, samples2: Latent) -> dict[str, object]:
    return _arithmetic(samples1, samples2, torch.sub)


def latent_multiply(ctx: NodeContext, samples: Latent, multiplier: float) -> dict[str, object]:
    scaled = samples.samples * multiplier
    return {"latent": Latent(scaled, samples.family, samples.noise_mask)}


def latent_batch_cost(query: CostQuery) -> Cost:
    first, second = query.batch("samples1"), query.batch("samples2")
    if first is None or second is None:
        return Cost()
    count = first.count + second.count
    if count > MAX_BATCH:
        return Cost(refusals=(Refusal("samples2", _batch_bound(count, "joining the two batches")),))
    return Cost(outputs={"latent": Batch(first.width, first.height, count, first.origin)})


def latent_from_batch_cost(query: CostQuery) -> Cost:
    samples = query.batch("samples")
    index, length = query.integer("batch_index"), query.integer("length")
    if samples is None or index is None or length is None:
        return Cost()
    if index >= samples.count:
        return Cost(refusals=(Refusal("batch_index", _index_past_batch(index, samples.count)),))
    count = min(samples.count - index, length)
    return Cost(outputs={"latent": Batch(samples.width, samples.height, count, samples.origin)})


def repeat_latent_batch_cost(query: CostQuery) -> Cost:
    samples, amount = query.batch("samples"), query.integer("amount")
    if samples is None or amount is None:
        return Cost()
    count = samples.count * amount
    if count > MAX_BATCH:
        message = _batch_bound(count, f"{samples.count} x {amount}")
        return Cost(refusals=(Refusal("amount", message),))
    return Cost(outputs={"latent": Batch(samples.width, samples.height, count, query.node_id)})


_LATENT_OUT = (Output("latent", SocketType.LATENT),)


def _arithmetic_spec(
    kind: str, display_name: str, function: Callable[..., dict[str, object]], sign: str
) -> NodeSpec:
    return NodeSpec(
        id=f"latent.{kind}",
        display_name=display_name,
        aliases=(f"Latent{kind.title()}",),
        category="latent/advanced",
        description=f"samples1 {sign} samples2, element by element; samples2 is fitted to "
        "samples1 (centre crop to its aspect, bilinear resize, batch cycled or cut). Keeps "
        "samples1's noise mask.",
        inputs=(socket("samples1", SocketType.LATENT), socket("samples2", SocketType.LATENT)),
        outputs=_LATENT_OUT,
        function=function,
    )


NODES = [
    NodeSpec(
        id="latent.batch",
        display_name="Latent Batch",
        aliases=("LatentBatch",),
        category="latent/batch",
        description="Joins two batches into one; samples2 is fitted to samples1's size (centre "
        "crop to its aspect, bilinear resize). Noise masks are joined image by image.",
        inputs=(socket("samples1", SocketType.LATENT), socket("samples2", SocketType.LATENT)),
        outputs=_LATENT_OUT,
        function=latent_batch,
        cost=latent_batch_cost,
    ),
    NodeSpec(
        id="latent.from_batch",
        display_name="Latent From Batch",
        aliases=("LatentFromBatch",),
        category="latent/batch",
        description="Up to `length` images of a batch, starting at batch_index (0 is the first).",
        inputs=(
            socket("samples", SocketType.LATENT),
            int_input("batch_index", 0, min=0, max=MAX_BATCH - 1),
            int_input("length", 1, min=1, max=MAX_BATCH),
        ),
        outputs=_LATENT_OUT,
        function=latent_from_batch,
        cost=latent_from_batch_cost,
    ),
    NodeSpec(
        id="latent.repeat_batch",
        display_name="Repeat Latent Batch",
        aliases=("RepeatLatentBatch",),
        category="latent/batch",
        description="The whole batch repeated `amount` times, one copy after another.",
        inputs=(
            socket("samples", SocketType.LATENT),
            int_input("amount", 1, min=1, max=MAX_BATCH),
        ),
        outputs=_LATENT_OUT,
        function=repeat_latent_batch,
        cost=repeat_latent_batch_cost,
    ),
    _arithmetic_spec("add", "Latent Add", latent_add, "+"),
    _arithmetic_spec("subtract", "Latent Subtract", latent_subtract, "-"),
    NodeSpec(
        id="latent.multiply",
        display_name="Latent Multiply",
        aliases=("LatentMultiply",),
        category="latent/advanced",
        description="Every latent value times the multiplier.",
        inputs=(
            socket("samples", SocketType.LATENT),
            float_input("multiplier", 1.0, min=-10.0, max=10.0),
        ),
        outputs=_LATENT_OUT,
        function=latent_multiply,
    ),
]
