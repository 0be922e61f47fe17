"""Preview Latent: a latent batch shown as pictures without a VAE.

Each image goes through the same linear latent -> RGB map the live sampler previews use (the
family's preview factors), so it costs a matrix product instead of a VAE decode and works
before any VAE is loaded. The pictures keep the latent's size (1/8 of the image's side, one
pixel per latent cell): the map only approximates colours and shapes, and enlarging it would
add pixels but no detail. They are written like Preview Image's, under `previews/` in the
output folder, and reported as `{filename, subfolder}` entries.
"""

from __future__ import annotations

from latentloom.api import (
    Cost,
    CostQuery,
    Latent,
    NodeContext,
    NodeSpec,
    SocketType,
    latent_to_rgb,
    save_pngs,
    socket,
)

PREVIEW_SUBFOLDER = "previews"
RGB_CHANNELS = 3
FLOAT32_BYTES = 4


def preview_latent(ctx: NodeContext, latent: Latent) -> dict[str, object]:
    pictures = latent_to_rgb(latent.samples, latent.family)
    saved = save_pngs(
        pictures, ctx.settings.output_dir, PREVIEW_SUBFOLDER, "latent_preview", ctx.workflow_json
    )
    return {"report": {"images": saved}}


def preview_latent_cost(query: CostQuery) -> Cost:
    """The pictures, float32 RGB at the latent's size, while they are written."""
    latent = query.batch("latent")
    if latent is None:
        return Cost()
    return Cost(
        host_working_bytes=latent.count * latent.latent_pixels * RGB_CHANNELS * FLOAT32_BYTES
    )


NODES = [
    NodeSpec(
        id="latent.preview",
        display_name="Preview Latent",
        aliases=("PreviewLatent", "Latent Preview"),
        category="latent",
        description="Shows each latent of the batch as a small picture (one pixel per latent "
        "cell) through the model family's fast latent-to-RGB map, without a VAE.",
        inputs=(socket("latent", SocketType.LATENT),),
        outputs=(),
        function=preview_latent,
        cost=preview_latent_cost,
        output_node=True,
    ),
]
