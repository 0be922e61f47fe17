"""Costs of the tiled nodes: Load Upscale Model, Upscale Image (using Model), tiled VAE.

Pure functions of the spec's inputs, like `node_costs.py`. Two facts need a stand-in before
anything runs:

* An upscaler's scale is in its weights. The loader's estimate guesses it from the file name
  (`4x-UltraSharp`, `RealESRGAN_x2plus`: the usual way they are named), else 4, the most
  common; at run time the node uses the model's real scale.
* Its working set: `UPSCALE_BYTES_PER_OUTPUT_PIXEL`, measured as the peak resident-memory
  growth of a full-size 4x ESRGAN (64 features, 23 blocks) on the CPU in fp32: 1,997 bytes
  per output pixel for a 32² tile, 1,296 at 64², 900 at 128², 887 at 192²; rounded up to
  1 KiB, halved for fp16. Other architectures differ (transformers such as SwinIR need
  more); ESRGAN-family models are the ones most used.

Upscale Image shrinks its tile until the tile's working set fits the budget (`memory_left`),
and refuses an output side past MAX_SIDE, naming the image input.
"""

from __future__ import annotations

import re

from latentloom.graph.cost import Batch, Cost, CostQuery, Refusal, Value
from latentloom.node_costs import VAE_DECODE_BYTES_PER_PIXEL, tiled_decode_bytes
from latentloom.nodes_limits import MAX_SIDE

UPSCALE_BYTES_PER_OUTPUT_PIXEL = 1024
ASSUMED_SCALE = 4
MIN_UPSCALE_TILE = 32
_SCALE_IN_NAME = re.compile(r"(?:^|[^0-9a-z])(?:([1-8])x|x([1-8]))(?![0-9])", re.IGNORECASE)


def scale_from_name(name: str) -> int:
    """The scale a file name states (`4x_foo`, `foo_x2`), else ASSUMED_SCALE."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    found = _SCALE_IN_NAME.search(stem)
    if found is None:
        return ASSUMED_SCALE
    return int(found.group(1) or found.group(2))


def upscale_model_loader_cost(query: CostQuery) -> Cost:
    name = str(query.literals.get("model_name", ""))
    size = query.files.size("upscale_models", name)
    return Cost(
        outputs={"upscale_model": Value(scale_from_name(name))},
        weights_bytes=query.weights(size or 0),
    )


def upscale_tile(
    tile: int, scale: int, width: int, height: int, memory_left: int | None, compute_bytes: int
) -> int:
    """`tile`, halved until one tile's working set fits `memory_left` (not below 32)."""
    if memory_left is None:
        return tile
    while (
        tile > MIN_UPSCALE_TILE
        and upscale_tile_bytes(tile, scale, width, height, compute_bytes) > memory_left
    ):
        tile = max(tile // 2, MIN_UPSCALE_TILE)
    return tile


def upscale_tile_bytes(tile: int, scale: int, width: int, height: int, compute_bytes: int) -> int:
    per_pixel = UPSCALE_BYTES_PER_OUTPUT_PIXEL * compute_bytes // 4
    return per_pixel * min(tile, width) * scale * min(tile, height) * scale


def upscaled_side_refusal(width: int, height: int, scale: int) -> Refusal | None:
    if max(width, height) * scale <= MAX_SIDE:
        return None
    return Refusal(
        "image",
        f"a {width}x{height} image upscaled {scale}x is {width * scale}x{height * scale}; the "
        f"largest side allowed is {MAX_SIDE:,}: scale the image down first",
    )


def upscale_with_model_cost(query: CostQuery) -> Cost:
    image, tile = query.batch("image"), query.integer("tile_size")
    if image is None or tile is None:
        return Cost()
    model = query.upstream.get("upscale_model")
    scale = model.value if isinstance(model, Value) else ASSUMED_SCALE
    refusal = upscaled_side_refusal(image.width, image.height, scale)
    if refusal is not None:
        return Cost(refusals=(refusal,))
    out = Batch(image.width * scale, image.height * scale, image.count, query.node_id)
    one_image = out.image_bytes // out.count
    left = None if query.memory_left is None else query.memory_left - 2 * out.image_bytes
    chosen = upscale_tile(tile, scale, image.width, image.height, left, query.compute_bytes)
    working = upscale_tile_bytes(chosen, scale, image.width, image.height, query.compute_bytes)
    # Host: each image is blended into a full-size buffer, then the frames are joined.
    return Cost(
        outputs={"image": out},
        working_bytes=working,
        host_working_bytes=out.image_bytes + one_image,
    )


def vae_decode_tiled_cost(query: CostQuery) -> Cost:
    latent, tile = query.batch("latent"), query.integer("tile_size")
    if latent is None or tile is None:
        return Cost()
    return Cost(
        outputs={"image": latent},
        working_bytes=tiled_decode_bytes(latent, tile),
        host_working_bytes=latent.image_bytes,
    )


def vae_encode_tiled_cost(query: CostQuery) -> Cost:
    image, tile = query.batch("image"), query.integer("tile_size")
    if image is None or tile is None:
        return Cost()
    working = VAE_DECODE_BYTES_PER_PIXEL * min(tile, image.width) * min(tile, image.height)
    return Cost(outputs={"latent": image}, working_bytes=working + image.image_bytes // image.count)
