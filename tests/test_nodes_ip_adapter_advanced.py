"""IPAdapter Advanced's extra inputs on Apply IP-Adapter: combine_embeds and image_negative.

The combinations are checked against their definitions on small tensors; the negative image
through the tiny plus adapter, whose default negative is a black image: giving that same black
image changes nothing, bit for bit, and giving the reference image moves the picture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.engine.executor import Engine, NodeExecutionError
from latentloom.graph.workflow import Link
from latentloom.models.clip_vision import load_clip_vision
from latentloom.models.ip_adapter import load_ip_adapter
from latentloom.models.ip_adapter_patch import UNCOND_IMAGE_SIDE, combine_embeddings, image_tokens
from latentloom.models.ip_adapter_tiny import (
    EXAMPLE_CLIP_VISION,
    EXAMPLE_IP_ADAPTER,
    EXAMPLE_IP_ADAPTER_PLUS,
)
from tests.test_nodes_ip_adapter import example_graph, saved_pixels


def test_combinations_follow_their_definitions() -> None:
    embeds = torch.tensor([[1.0, 2.0], [3.0, -4.0], [2.0, 2.0]])
    assert torch.equal(combine_embeddings(embeds, "concat"), embeds)
    assert combine_embeddings(embeds, "add").tolist() == [[6.0, 0.0]]
    assert combine_embeddings(embeds, "subtract").tolist() == [[-1.5, 3.0]]  # first - mean(rest)
    assert combine_embeddings(embeds, "average").tolist() == [[2.0, 0.0]]
    norms = torch.tensor([14.0, 24.0]).sqrt()  # per feature, over the images
    expected = (embeds / norms).mean(dim=0, keepdim=True)
    assert torch.allclose(combine_embeddings(embeds, "norm average"), expected)
    one = embeds[:1]
    assert all(torch.equal(combine_embeddings(one, c), one) for c in ("subtract", "add"))
    with pytest.raises(ValueError, match=r"combine_embeds 'mean' is not one of: concat, add"):
        combine_embeddings(embeds, "mean")


def test_combined_images_give_one_image_worth_of_tokens(models_dir: Path) -> None:
    adapter = load_ip_adapter(models_dir / "ipadapter" / EXAMPLE_IP_ADAPTER)
    clip = load_clip_vision(models_dir / "clip_vision" / EXAMPLE_CLIP_VISION)
    images = torch.rand(3, 64, 64, 3, generator=torch.Generator().manual_seed(2))
    concat, _ = image_tokens(adapter, clip, images)
    average, uncond = image_tokens(adapter, clip, images, combine="average")
    assert concat.shape[1] == 3 * average.shape[1] and uncond.shape == average.shape


def test_a_black_negative_is_the_plus_adapters_default(models_dir: Path) -> None:
    adapter = load_ip_adapter(models_dir / "ipadapter" / EXAMPLE_IP_ADAPTER_PLUS)
    clip = load_clip_vision(models_dir / "clip_vision" / EXAMPLE_CLIP_VISION)
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(3))
    black = torch.zeros(1, UNCOND_IMAGE_SIDE, UNCOND_IMAGE_SIDE, 3)
    cond, uncond = image_tokens(adapter, clip, image)
    with_black = image_tokens(adapter, clip, image, negative=black)
    assert torch.equal(with_black[0], cond) and torch.equal(with_black[1], uncond)
    _, with_itself = image_tokens(adapter, clip, image, negative=image)
    assert torch.equal(with_itself, cond)  # the negative rows see the reference image


def test_image_negative_and_combine_through_the_engine(engine: Engine) -> None:
    example = example_graph()
    plain = saved_pixels(engine, example)
    # One image: every combination is the image itself.
    assert saved_pixels(engine, example.with_input("apply", "combine_embeds", "average")) == plain
    negative = example.model_copy(deep=True)
    negative.nodes["apply"].inputs["image_negative"] = Link(node="image", output="image")
    assert saved_pixels(engine, negative) != plain


def test_without_clip_vision_or_with_a_mask_it_says_what_to_do(engine: Engine) -> None:
    example = example_graph()
    unbundled = example.model_copy(deep=True)
    del unbundled.nodes["apply"].inputs["clip_vision"]
    with pytest.raises(NodeExecutionError, match="needs clip_vision: connect a Load CLIP Vision"):
        engine.run(unbundled)
    masked = example.model_copy(deep=True)
    masked.nodes["apply"].inputs["attn_mask"] = Link(node="image", output="mask")
    with pytest.raises(NodeExecutionError, match="attn_mask is not implemented"):
        engine.run(masked)
