"""Cost functions of the built-in nodes outside `nodes/latent.py`: sampler, VAE, loaders, values.

Each is what its node's spec declares as `cost` (see `graph/cost.py`). The working-set
constants are per pixel, so they scale with the request:

* UNet activations, `UNET_ELEMENTS_PER_LATENT_PIXEL` numbers per latent pixel per evaluated
  image (the positive and negative prompts double the batch): SD 1.x at its first level keeps
  its skip connections (~2,000 numbers per latent pixel) while a transformer block's GEGLU
  feed-forward works on 2 x 1,280 channels at 320-channel resolution (~5,000); rounded up.
* VAE decode (fp32, one image at a time), `VAE_DECODE_BYTES_PER_PIXEL`: measured as the peak
  resident-memory growth of decoding one image with the full-size SD VAE on the CPU (256²:
  4,823 bytes per pixel, 384²: 4,026, 512²: 3,862, falling towards a constant), rounded up to 4 KiB.
* VAE encode runs the whole batch at once through the mirror-image encoder: the same constant
  per pixel of the batch.
"""

from __future__ import annotations

import math

from latentloom.graph.cost import Batch, Cost, CostQuery, Refusal, Value
from latentloom.nodes_limits import MAX_SCHEDULE_LENGTH

UNET_ELEMENTS_PER_LATENT_PIXEL = 8192
VAE_DECODE_BYTES_PER_PIXEL = 4096
SAMPLER_LATENT_COPIES = 8  # x, noise, denoised, derivatives and history of multistep samplers
FULL_DENOISE = 0.9999  # as the sampler: any denoise above this runs the full schedule


def schedule_length(steps: int, denoise: float) -> float:
    """Entries of the schedule a KSampler builds: steps, or steps / denoise below full denoise."""
    if denoise > FULL_DENOISE:
        return float(steps)
    if denoise <= 0:
        return 0.0
    return math.floor(steps / denoise) if math.isfinite(steps / denoise) else math.inf


def ksampler_cost(query: CostQuery) -> Cost:
    steps, denoise = query.integer("steps"), query.number("denoise")
    if steps is None or denoise is None:
        return Cost()
    length = schedule_length(steps, denoise)
    if length > MAX_SCHEDULE_LENGTH:
        return Cost(refusals=(_schedule_refusal(steps, denoise, length),))
    latent = query.batch("latent")
    if latent is None:
        return Cost()
    evaluated = 2 * latent.count  # the positive and negative prompts in one model call
    activations = UNET_ELEMENTS_PER_LATENT_PIXEL * query.compute_bytes
    working = (
        activations * latent.latent_pixels * evaluated + SAMPLER_LATENT_COPIES * latent.latent_bytes
    )
    steps_run = steps if denoise > 0 else 0
    return Cost(
        outputs={"latent": latent}, working_bytes=working, work=steps_run * latent.megapixels
    )


def _schedule_refusal(steps: int, denoise: float, length: float) -> Refusal:
    shown = "an unbounded" if math.isinf(length) else f"a {int(length):,}-step"
    return Refusal(
        "denoise",
        f"steps / denoise = {steps} / {denoise!r} asks for {shown} schedule; the most is "
        f"{MAX_SCHEDULE_LENGTH:,}: raise denoise to at least "
        f"{steps / MAX_SCHEDULE_LENGTH:.4g} or lower steps",
    )


def vae_decode_cost(query: CostQuery) -> Cost:
    latent = query.batch("latent")
    if latent is None:
        return Cost()
    one_image = VAE_DECODE_BYTES_PER_PIXEL * latent.width * latent.height
    tile = auto_decode_tile(latent, query.memory_left)
    if tile is not None:  # a full decode won't fit the budget: the node decodes in tiles
        one_image = tiled_decode_bytes(latent, tile)
    # The decoded frames are gathered, then joined: the batch is briefly held twice.
    return Cost(
        outputs={"image": latent}, working_bytes=one_image, host_working_bytes=latent.image_bytes
    )


# Tiled VAE decode (ComfyUI's VAEDecodeTiled defaults and bounds, in pixels).
DECODE_TILE_SIZES = (512, 256, 128, 64)  # the automatic choice: the largest that fits
MIN_DECODE_TILE = 64


def tiled_decode_bytes(batch: Batch, tile: int) -> int:
    """Working set of decoding one image `tile` pixels square at a time."""
    return VAE_DECODE_BYTES_PER_PIXEL * min(tile, batch.width) * min(tile, batch.height)


def auto_decode_tile(batch: Batch, memory_left: int | None) -> int | None:
    """The tile size VAE Decode switches to when a full decode would pass the budget, else None.

    The decode adds its output and the join of its frames (twice the batch's image bytes) to
    what is held; the rest of `memory_left` is for the working set. Where host and device
    memory are separate that counts the output against the device too: tiling starts a
    little early there, never late. When not even the smallest tile fits, that tile is
    returned and the budget refuses the job, naming its number.
    """
    if memory_left is None:
        return None
    room = memory_left - 2 * batch.image_bytes
    if VAE_DECODE_BYTES_PER_PIXEL * batch.width * batch.height <= room:
        return None
    for tile in DECODE_TILE_SIZES:
        if tile < max(batch.width, batch.height) and tiled_decode_bytes(batch, tile) <= room:
            return tile
    return MIN_DECODE_TILE


def vae_encode_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    if image is None:
        return Cost()
    working = VAE_DECODE_BYTES_PER_PIXEL * image.width * image.height * image.count
    return Cost(outputs={"latent": image}, working_bytes=working + image.image_bytes)


def checkpoint_cost(query: CostQuery) -> Cost:
    size = query.files.size("checkpoints", str(query.literals.get("checkpoint", "")))
    return Cost(weights_bytes=query.weights(size or 0))


def lora_cost(query: CostQuery) -> Cost:
    size = query.files.size("loras", str(query.literals.get("lora", "")))
    return Cost(weights_bytes=query.weights(size or 0))


def load_image_cost(query: CostQuery) -> Cost:
    size = query.files.image_size(str(query.literals.get("image", "")))
    if size is None:
        return Cost()
    width, height = size
    return Cost(outputs={"image": Batch(width, height, 1, query.node_id)})


def save_images_cost(query: CostQuery) -> Cost:
    """Saving converts the batch to 8-bit pictures: one byte per channel per pixel."""
    images = query.batch("images")
    if images is None:
        return Cost()
    return Cost(host_working_bytes=images.image_bytes // 4)


def value_cost(query: CostQuery) -> Cost:
    """A value node hands its value on: nodes it feeds are estimated with the real value."""
    if "value" not in query.literals:
        return Cost()
    return Cost(outputs={"value": Value(query.literals["value"])})


# The custom-sampling set. A SIGMAS output's estimate is `Value(steps)`, the number of steps
# its schedule has, so a sampler downstream can count its work; None when it is not known.


def _sampler_cost(query: CostQuery, steps: int | None, outputs: tuple[str, ...]) -> Cost:
    """A sampler's memory and work on the `latent` input, like KSampler's, for `steps` steps."""
    latent = query.batch("latent")
    if latent is None:
        return Cost()
    evaluated = 2 * latent.count  # assume guidance: positive and negative in one model call
    activations = UNET_ELEMENTS_PER_LATENT_PIXEL * query.compute_bytes
    working = (
        activations * latent.latent_pixels * evaluated + SAMPLER_LATENT_COPIES * latent.latent_bytes
    )
    return Cost(
        outputs=dict.fromkeys(outputs, latent),
        working_bytes=working,
        work=(steps or 0) * latent.megapixels,
    )


def ksampler_advanced_cost(query: CostQuery) -> Cost:
    steps = query.integer("steps")
    start, end = query.integer("start_at_step"), query.integer("end_at_step")
    if steps is None or start is None or end is None:
        return _sampler_cost(query, None, ("latent",))
    return _sampler_cost(query, max(min(end, steps) - start, 0), ("latent",))


def sampler_custom_cost(query: CostQuery) -> Cost:
    """Sampler Custom (Advanced): the steps of the SIGMAS it is given, when known."""
    return _sampler_cost(query, _sigmas_steps(query), ("output", "denoised_output"))


def _sigmas_steps(query: CostQuery) -> int | None:
    sigmas = query.upstream.get("sigmas")
    if isinstance(sigmas, Value) and isinstance(sigmas.value, int):
        return sigmas.value
    return None


def scheduler_cost(query: CostQuery) -> Cost:
    """Schedulers make steps + 1 sigmas (BasicScheduler from a steps / denoise schedule)."""
    steps, denoise = query.integer("steps"), query.number("denoise")
    if steps is None:
        return Cost()
    if denoise is not None:
        length = schedule_length(steps, denoise)
        if length > MAX_SCHEDULE_LENGTH:
            return Cost(refusals=(_schedule_refusal(steps, denoise, length),))
        if denoise <= 0:
            return Cost(outputs={"sigmas": Value(0)})
    return Cost(outputs={"sigmas": Value(steps)})


def split_sigmas_cost(query: CostQuery) -> Cost:
    total, step = _sigmas_steps(query), query.integer("step")
    if total is None or step is None:
        return Cost()
    high = min(step, total)
    return Cost(outputs={"high_sigmas": Value(high), "low_sigmas": Value(max(total - step, 0))})


def split_sigmas_denoise_cost(query: CostQuery) -> Cost:
    total, denoise = _sigmas_steps(query), query.number("denoise")
    if total is None or denoise is None:
        return Cost()
    low = min(round(total * denoise), total)
    high = total - low if low > 0 else 0  # no low steps: sigmas[:-0] leaves high empty
    return Cost(outputs={"high_sigmas": Value(high), "low_sigmas": Value(low)})


def flip_sigmas_cost(query: CostQuery) -> Cost:
    total = _sigmas_steps(query)
    return Cost() if total is None else Cost(outputs={"sigmas": Value(total)})
