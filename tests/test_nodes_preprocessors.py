"""The preprocessor nodes: their shape (IMAGE in, IMAGE out, run image by image with progress),
what a `Preprocessor` declaration may return, Canny as ComfyUI's node, and Load Pose through
the engine with its file confined to the input folder."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import torch
from PIL import Image

from latentloom.api import (
    NodeContext,
    Preprocessor,
    PreprocessorError,
    from_pil,
    preprocessor_nodes,
    socket,
)
from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.node import SocketType
from latentloom.registry import Registry, spec_problems
from tests.image_node_support import node_specs, run_node
from tests.node_calls import bare_engine
from tests.support import REPO, node_context

STANDING = REPO / "tests" / "fixtures" / "pose" / "standing.json"
IMAGE_NODES = {
    "preprocess.canny": "Canny",
    "preprocess.scribble": "ScribblePreprocessor",
    "preprocess.lineart": "LineArtPreprocessor",
    "preprocess.depth_map": "MiDaS-DepthMapPreprocessor",
    "preprocess.normal_map": "MiDaS-NormalMapPreprocessor",
}


def test_every_preprocessor_is_an_image_to_image_node_found_by_its_common_name() -> None:
    specs = node_specs("preprocessors")
    assert sorted(specs) == sorted(IMAGE_NODES)
    for node_id, alias in IMAGE_NODES.items():
        spec = specs[node_id]
        assert spec.category == "image/preprocessors" and alias in spec.aliases
        assert (spec.inputs[0].name, spec.inputs[0].type) == ("image", SocketType.IMAGE)
        assert [(o.name, o.type) for o in spec.outputs] == [("image", SocketType.IMAGE)]
        assert spec_problems(spec) == []


@pytest.mark.parametrize("node_id", sorted(IMAGE_NODES))
def test_each_keeps_the_size_and_batch_and_gives_0_to_1(node_id: str) -> None:
    torch.manual_seed(1)
    image = torch.rand(2, 19, 23, 3)
    out = run_node("preprocessors", node_id, image=image)
    assert out.shape == (2, 19, 23, 3) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    # Image by image: the second image of the batch is what it would be on its own.
    assert torch.equal(out[1:], run_node("preprocessors", node_id, image=image[1:]))


def test_canny_node_gives_comfyuis_three_equal_channels_of_0_and_1() -> None:
    image = torch.zeros(1, 12, 16, 3)
    image[:, :, 8:] = 1.0
    out = run_node("preprocessors", "preprocess.canny", image=image)
    assert torch.equal(out[..., 0], out[..., 1]) and torch.equal(out[..., 1], out[..., 2])
    assert out[0, :, 7, 0].tolist() == [1.0] * 12 and out.sum() == 36
    spec = node_specs("preprocessors")["preprocess.canny"]
    low, high = spec.inputs[1], spec.inputs[2]
    assert (low.name, low.default, low.min, low.max) == ("low_threshold", 0.4, 0.01, 0.99)
    assert (high.name, high.default, high.min, high.max) == ("high_threshold", 0.8, 0.01, 0.99)


def run_spec(preprocessor: Preprocessor, image: torch.Tensor, **inputs: Any) -> torch.Tensor:
    [spec] = preprocessor_nodes(preprocessor)
    out: torch.Tensor = spec.function(node_context(), image=image, **inputs)["image"]
    return out


def test_a_pack_preprocessor_registers_and_reports_progress_per_image() -> None:
    seen: list[tuple[int, int]] = []

    def brighten(ctx: NodeContext, image: torch.Tensor, amount: float) -> torch.Tensor:
        return (image + amount).clamp(0, 1)

    from latentloom.api import float_input

    preprocessor = Preprocessor(
        "mypack.brighten", "Brighten", brighten, inputs=(float_input("amount", 0.1, min=0, max=1),)
    )
    registry = Registry()
    registry.register_pack("mypack", preprocessor_nodes(preprocessor))
    spec = registry.specs["mypack.brighten"]
    context = node_context()
    context.on_progress = lambda step, total: seen.append((step, total))
    out = spec.function(context, image=torch.zeros(3, 2, 2, 3), amount=0.25)["image"]
    assert torch.equal(out, torch.full((3, 2, 2, 3), 0.25))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (torch.zeros(1, 4, 4), "bad.one returned a torch.float32 tensor of shape [1, 4, 4]; "
         "expected a float32 tensor [1, height, width, 3] in 0..1"),
        (torch.zeros(1, 4, 4, 3, dtype=torch.float64), "bad.one returned a torch.float64 tensor"),
        (torch.full((1, 4, 4, 3), 1.5), "bad.one returned values outside 0..1 (from 1.5 to 1.5"),
        ("edges", "bad.one returned str; expected a float32 tensor"),
    ],
)  # fmt: skip
def test_a_result_that_is_not_an_image_is_an_error_naming_the_preprocessor(
    result: Any, message: str
) -> None:
    def returns(ctx: NodeContext, image: torch.Tensor) -> Any:
        return result

    preprocessor = Preprocessor("bad.one", "Bad", returns)
    with pytest.raises(PreprocessorError) as error:
        run_spec(preprocessor, torch.zeros(1, 4, 4, 3))
    assert str(error.value).startswith(message)


def test_a_batch_must_come_back_one_size_and_image_is_not_an_input_name() -> None:
    def grow(ctx: NodeContext, image: torch.Tensor) -> torch.Tensor:
        side = 4 if float(image.sum()) == 0 else 5
        return torch.zeros(1, side, side, 3)

    with pytest.raises(PreprocessorError, match=r"returned a 5x5 image after a 4x4 one"):
        run_spec(
            Preprocessor("bad.grow", "Grow", grow),
            torch.stack([torch.zeros(4, 4, 3), torch.ones(4, 4, 3)]),
        )
    with pytest.raises(PreprocessorError, match="an input may not be called 'image'"):
        preprocessor_nodes(
            Preprocessor("bad.name", "Bad", grow, inputs=(socket("image", SocketType.IMAGE),))
        )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("preprocessors")
    built = bare_engine(root)
    shutil.copy(STANDING, root / "input" / "standing.json")
    (root / "input" / "nocanvas.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": [0.5] * 54}]})
    )
    (root / "outside.json").write_text("{}")
    return built


def pose_graph(**inputs: Any) -> Any:
    nodes = {
        "pose": {"type": "preprocess.load_pose", "inputs": {"pose": "standing.json", **inputs}},
        "preview": {
            "type": "image.preview",
            "inputs": {"images": {"node": "pose", "output": "image"}},
        },
    }
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def test_load_pose_draws_the_file_at_its_canvas_size_or_the_size_asked(engine: Engine) -> None:
    image = engine.run(pose_graph(), targets=["pose"]).outputs["pose"]["image"]
    assert image.shape == (1, 256, 256, 3)
    assert (image[0, 40, 128] * 255).round().tolist() == [255.0, 0.0, 0.0]  # the nose
    half = engine.run(pose_graph(width=128), targets=["pose"]).outputs["pose"]["image"]
    assert half.shape == (1, 128, 128, 3)
    assert (half[0, 120, 75] * 255).round().tolist() == [85.0, 0.0, 255.0]  # left ankle


def test_load_pose_lists_json_in_the_input_folder_and_refuses_a_path_out_of_it(
    engine: Engine,
) -> None:
    assert engine.list_choices("input_poses") == ["nocanvas.json", "standing.json"]
    problems = engine.validate(pose_graph(pose="../outside.json"))
    assert [(p.node, p.input) for p in problems] == [("pose", "pose")]


def test_a_pose_file_without_a_canvas_needs_a_width_and_height(engine: Engine) -> None:
    with pytest.raises(
        Exception,
        match=r"canvas_width: nocanvas\.json gives no canvas size: set the node's width and height",
    ):
        engine.run(pose_graph(pose="nocanvas.json", coordinates="normalized"), targets=["pose"])


def test_pose_from_a_skeleton_image_passes_through_or_resizes_nearest() -> None:
    skeleton = torch.zeros(1, 8, 8, 3)
    skeleton[0, 2:4, 2:4] = torch.tensor([1.0, 0.0, 0.0])
    same = run_node("preprocess_pose", "preprocess.pose_image", image=skeleton)
    assert torch.equal(same, skeleton)
    double = run_node("preprocess_pose", "preprocess.pose_image", image=skeleton, width=16)
    assert double.shape == (1, 16, 16, 3) and torch.equal(
        double[0, 4:8, 4:8], skeleton[0, 2:4, 2:4].repeat(2, 2, 1)
    )
    assert set(double.flatten().tolist()) == {0.0, 1.0}  # nearest: no blended colours


def test_the_example_pose_is_the_fixture() -> None:
    assert (
        REPO / "workflows" / "inputs" / "pose-standing.json"
    ).read_text() == STANDING.read_text()


def test_the_example_depth_map_gives_a_sphere_of_normals() -> None:
    with Image.open(REPO / "workflows" / "inputs" / "depth-sphere.png") as opened:
        depth = from_pil(opened.convert("RGB"))
    normals = run_node("preprocessors", "preprocess.normal_map", image=depth)
    assert normals.shape == (1, 256, 256, 3)
    centre, right, left = normals[0, 120, 128], normals[0, 120, 180], normals[0, 120, 76]
    torch.testing.assert_close(centre, torch.tensor([0.5, 0.5, 1.0]), rtol=0, atol=0.01)
    # Nearness falls away from the centre: x points left on the right side, right on the left.
    assert float(right[0]) < 0.4 and float(left[0]) > 0.6
    stretched = run_node("preprocessors", "preprocess.depth_map", image=depth)
    assert float(stretched.min()) == 0.0 and float(stretched.max()) == 1.0
