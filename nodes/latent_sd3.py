"""Empty latents for the 16-channel families (ComfyUI's EmptySD3LatentImage).

SD 3.x and FLUX.1 both sample 16-channel latents at 1/8 of the image size, and ComfyUI users
feed this one node to both. So the latent it makes carries no family: the model that samples
it fixes the family (the sampler returns its model's), and until then a VAE decodes it in its
own family's scale and shift. Zeros, as ComfyUI makes them: the sampler adds the noise.
"""

from __future__ import annotations

import torch

from latentloom.api import (
    MAX_BATCH,
    MAX_SIDE,
    SD3,
    Batch,
    Cost,
    CostQuery,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    int_input,
)

SIDE_STEP = 16  # SD 3 / FLUX patchify the /8 latent in 2x2 patches: sides in multiples of 16


def empty_sd3_latent(ctx: NodeContext, width: int, height: int, batch: int) -> dict[str, object]:
    shape = (batch, SD3.latent_channels, height // SD3.downscale, width // SD3.downscale)
    return {"latent": Latent(torch.zeros(shape), None)}


def empty_sd3_latent_cost(query: CostQuery) -> Cost:
    width, height, batch = query.integer("width"), query.integer("height"), query.integer("batch")
    if width is None or height is None or batch is None:
        return Cost()
    return Cost(outputs={"latent": Batch(width, height, batch, query.node_id)})


NODES = [
    NodeSpec(
        id="latent.empty_sd3",
        display_name="Empty SD3 Latent",
        aliases=("EmptySD3LatentImage",),  # ComfyUI shows the class name
        category="latent/sd3",
        description="A batch of zero 16-channel latents (SD 3.x and FLUX.1) of the given image "
        "size; the model that samples it decides its family.",
        inputs=(
            int_input("width", 1024, min=SIDE_STEP, max=MAX_SIDE, step=SIDE_STEP),
            int_input("height", 1024, min=SIDE_STEP, max=MAX_SIDE, step=SIDE_STEP),
            int_input("batch", 1, min=1, max=MAX_BATCH),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=empty_sd3_latent,
        cost=empty_sd3_latent_cost,
    ),
]
