"""Preview Latent: the family's latent -> RGB map, written as PNGs under previews/ like Preview
Image, one per latent of the batch, at the latent's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentloom.graph.workflow import parse_workflow
from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import Latent
from latentloom.preview import latent_to_preview
from tests.node_calls import bare_engine, node_runner


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as opened:
        return np.asarray(opened.convert("RGB"))


def test_a_zero_latent_previews_as_the_familys_bias(tmp_path: Path) -> None:
    call = node_runner(tmp_path)
    report = call("latent.preview", latent=Latent(torch.zeros(2, 4, 3, 5), SDXL))["report"]
    assert report == {
        "images": [
            {"filename": "latent_preview_00001.png", "subfolder": "previews"},
            {"filename": "latent_preview_00002.png", "subfolder": "previews"},
        ]
    }
    picture = pixels(tmp_path / "previews" / "latent_preview_00001.png")
    assert picture.shape == (3, 5, 3)  # one pixel per latent cell
    # SDXL's bias (0.1084, -0.0175, -0.0011) -> (b + 1) / 2 * 255, truncated as saved images are.
    assert picture.reshape(-1, 3).tolist() == [[141, 125, 127]] * 15


def test_each_channel_goes_through_its_row_of_factors(tmp_path: Path) -> None:
    latent = torch.zeros(1, 4, 1, 2)
    latent[0, 3, 0, 1] = 1.0  # SD 1.x's fourth row: (-0.2120, -0.2616, -0.7177)
    call = node_runner(tmp_path)
    call("latent.preview", latent=Latent(latent, SD15))
    picture = pixels(tmp_path / "previews" / "latent_preview_00001.png")
    assert picture[0, 0].tolist() == [127, 127, 127]  # 0.5 * 255 = 127.5, truncated
    expected = [int((1 + f) / 2 * 255) for f in (-0.2120, -0.2616, -0.7177)]
    assert picture[0, 1].tolist() == expected == [100, 94, 35]


def test_it_agrees_with_the_live_preview_up_to_rounding(tmp_path: Path) -> None:
    latent = torch.randn(1, 4, 6, 7, generator=torch.Generator().manual_seed(3))
    node_runner(tmp_path)("latent.preview", latent=Latent(latent, SDXL))
    saved = pixels(tmp_path / "previews" / "latent_preview_00001.png").astype(int)
    live = np.asarray(latent_to_preview(latent, "sdxl")).astype(int)
    # The live preview rounds, saved images truncate: at most one level apart.
    assert np.abs(saved - live).max() <= 1


def test_preview_latent_is_an_output_node_that_runs_without_a_vae(tmp_path: Path) -> None:
    engine = bare_engine(tmp_path)
    workflow = parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "empty": {
                    "type": "latent.empty",
                    "inputs": {"width": 128, "height": 64, "batch": 1},
                },
                "show": {
                    "type": "latent.preview",
                    "inputs": {"latent": {"node": "empty", "output": "latent"}},
                },
            },
        }
    )
    result = engine.run(workflow)  # the output nodes are the default targets
    [entry] = result.reports["show"]["images"]
    assert entry["subfolder"] == "previews"
    assert pixels(tmp_path / "output" / "previews" / entry["filename"]).shape == (8, 16, 3)
