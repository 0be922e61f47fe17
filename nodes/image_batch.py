"""Image batches and compositing: batch two images, take some from a batch, repeat a batch,
paste one image onto another through a mask.

Each follows the ComfyUI class in its aliases. Where ComfyUI quietly reconciles sizes we do
the same, because users' graphs rely on it: Batch Images fits image2 to image1 (bilinear,
centre-cropped), Image From Batch cuts its range at the batch's end, and a composite's source
and mask are cycled to the destination's batch and cut at its edges. What would grow a batch
past MAX_BATCH is refused, naming the input, at validation when the sizes are known there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentloom.api import (
    MAX_BATCH,
    MAX_SIDE,
    Batch,
    Cost,
    CostQuery,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    boolean_input,
    int_input,
    repeat_to_batch,
    resize_images,
    socket,
)


def _too_many(count: int, how: str) -> str:
    return f"{how} make a batch of {count:,} images; the most is {MAX_BATCH}"


def batch_images(ctx: NodeContext, image1: torch.Tensor, image2: torch.Tensor) -> dict[str, object]:
    count = image1.shape[0] + image2.shape[0]
    if count > MAX_BATCH:
        raise ValueError(_batch_problem(image1.shape[0], image2.shape[0]))
    if image2.shape[1:3] != image1.shape[1:3]:
        image2 = resize_images(image2, image1.shape[2], image1.shape[1], "bilinear", "center")
    return {"image": torch.cat((image1, image2))}


def _batch_problem(count1: int, count2: int) -> str:
    return _too_many(count1 + count2, f"image1 ({count1}) and image2 ({count2})")


def from_batch_range(count: int, batch_index: int, length: int) -> tuple[int, int]:
    """(start, length) of Image From Batch: ComfyUI moves an index past the end onto the last
    image and cuts the length at the batch's end."""
    start = min(count - 1, batch_index)
    return start, min(count - start, length)


def image_from_batch(
    ctx: NodeContext, image: torch.Tensor, batch_index: int, length: int
) -> dict[str, object]:
    start, taken = from_batch_range(image.shape[0], batch_index, length)
    return {"image": image[start : start + taken].clone()}


def repeat_image_batch(ctx: NodeContext, image: torch.Tensor, amount: int) -> dict[str, object]:
    if image.shape[0] * amount > MAX_BATCH:
        raise ValueError(_repeat_problem(image.shape[0], amount))
    return {"image": image.repeat(amount, 1, 1, 1)}


def _repeat_problem(count: int, amount: int) -> str:
    return _too_many(count * amount, f"amount {amount} repeats of {count} image(s)")


def composite_images(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    mask: torch.Tensor | None,
    resize_source: bool,
) -> torch.Tensor:
    """Source pasted at (x, y) of destination (both [B, H, W, C]), weighted by the mask
    (1 = source), cut at the destination's edges; a new tensor."""
    out = destination.movedim(-1, 1).clone()
    height, width = out.shape[-2:]
    layer = source.movedim(-1, 1)
    if resize_source:
        layer = F.interpolate(layer, size=(height, width), mode="bilinear")
    layer = repeat_to_batch(layer, out.shape[0])
    if mask is None:
        weight = torch.ones_like(layer[:, :1])
    else:
        flat = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).to(layer.dtype)
        weight = F.interpolate(flat, size=layer.shape[-2:], mode="bilinear")
        weight = repeat_to_batch(weight, out.shape[0])
    x, y = min(x, width), min(y, height)
    w, h = min(layer.shape[-1], width - x), min(layer.shape[-2], height - y)
    weight = weight[..., :h, :w]
    under = out[..., y : y + h, x : x + w]
    out[..., y : y + h, x : x + w] = weight * layer[..., :h, :w] + (1 - weight) * under
    return out.movedim(1, -1).contiguous()


def image_composite_masked(
    ctx: NodeContext,
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool,
    mask: torch.Tensor | None,
) -> dict[str, object]:
    return {"image": composite_images(destination, source, x, y, mask, resize_source)}


def batch_images_cost(query: CostQuery) -> Cost:
    image1, image2 = query.batch("image1"), query.batch("image2")
    if image1 is None or image2 is None:
        return Cost()
    if image1.count + image2.count > MAX_BATCH:
        return Cost(refusals=(Refusal("image2", _batch_problem(image1.count, image2.count)),))
    out = Batch(image1.width, image1.height, image1.count + image2.count, query.node_id)
    return Cost(outputs={"image": out}, host_working_bytes=image1.image_bytes)  # fitted image2


def image_from_batch_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    batch_index, length = query.integer("batch_index"), query.integer("length")
    if image is None or batch_index is None or length is None:
        return Cost()
    _, taken = from_batch_range(image.count, batch_index, length)
    return Cost(outputs={"image": Batch(image.width, image.height, taken, image.origin)})


def repeat_image_batch_cost(query: CostQuery) -> Cost:
    image, amount = query.batch("image"), query.integer("amount")
    if image is None or amount is None:
        return Cost()
    if image.count * amount > MAX_BATCH:
        return Cost(refusals=(Refusal("amount", _repeat_problem(image.count, amount)),))
    return Cost(
        outputs={"image": Batch(image.width, image.height, image.count * amount, query.node_id)}
    )


def composite_cost(query: CostQuery) -> Cost:
    destination = query.batch("destination")
    if destination is None:
        return Cost()
    # The channels-first copy it writes into, the cycled source and its weights.
    return Cost(outputs={"image": destination}, host_working_bytes=3 * destination.image_bytes)


_OUT = (Output("image", SocketType.IMAGE),)

NODES = [
    NodeSpec(
        id="image.batch",
        display_name="Batch Images",
        aliases=("ImageBatch",),
        category="image/batch",
        description="image1's images then image2's, as one batch; image2 is fitted to "
        "image1's size (bilinear, centre-cropped) when they differ.",
        inputs=(socket("image1", SocketType.IMAGE), socket("image2", SocketType.IMAGE)),
        outputs=_OUT,
        function=batch_images,
        cost=batch_images_cost,
    ),
    NodeSpec(
        id="image.from_batch",
        display_name="Image From Batch",
        aliases=("ImageFromBatch",),
        category="image/batch",
        description="length images from batch_index on (0 is the first); the range stops at "
        "the batch's end, and an index past it takes the last image.",
        inputs=(
            socket("image", SocketType.IMAGE),
            int_input("batch_index", 0, min=0, max=MAX_BATCH - 1),
            int_input("length", 1, min=1, max=MAX_BATCH),
        ),
        outputs=_OUT,
        function=image_from_batch,
        cost=image_from_batch_cost,
    ),
    NodeSpec(
        id="image.repeat_batch",
        display_name="Repeat Image Batch",
        aliases=("RepeatImageBatch",),
        category="image/batch",
        description="The whole batch amount times over: [a, b] x 2 is [a, b, a, b].",
        inputs=(socket("image", SocketType.IMAGE), int_input("amount", 1, min=1, max=MAX_BATCH)),
        outputs=_OUT,
        function=repeat_image_batch,
        cost=repeat_image_batch_cost,
    ),
    NodeSpec(
        id="image.composite_masked",
        display_name="Image Composite Masked",
        aliases=("ImageCompositeMasked", "Paste Image"),
        category="image",
        description="Pastes source onto destination with its top-left corner at (x, y), cut at "
        "destination's edges. The mask (stretched to source's size) weighs source: 1 pastes, 0 "
        "keeps destination; no mask pastes all of it. resize_source stretches source to "
        "destination's size first.",
        inputs=(
            socket("destination", SocketType.IMAGE),
            socket("source", SocketType.IMAGE),
            int_input("x", 0, min=0, max=MAX_SIDE),
            int_input("y", 0, min=0, max=MAX_SIDE),
            boolean_input("resize_source", False),
            socket("mask", SocketType.MASK, optional=True),
        ),
        outputs=_OUT,
        function=image_composite_masked,
        cost=composite_cost,
    ),
]
