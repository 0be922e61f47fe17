"""Poses for OpenPose ControlNets: drawn from an OpenPose JSON file, or taken from a skeleton image.

Load Pose reads a `.json` from the input folder (confined to it like every input file), checks
it field by field and draws the standard OpenPose skeleton (ControlNet's annotator colours;
see `latentloom.api.draw_pose`). The picture is the file's canvas size unless width and height
say otherwise, with the same rule as Image Scale (a side of 0 follows the other at the canvas's
aspect ratio); the pose is stretched onto it. Pose (from Skeleton Image) is for a skeleton
render you already have: it passes through, resized like Image Scale (nearest-exact by
default, so the limb colours stay exact).
"""

from __future__ import annotations

import torch

from latentloom.api import (
    INPUT_POSES,
    MAX_FRAMES,
    MAX_SIDE,
    POSE_COORDINATES,
    UPSCALE_METHODS,
    Batch,
    Cost,
    CostQuery,
    DynamicChoices,
    Input,
    NodeContext,
    NodeSpec,
    Output,
    PoseFormatError,
    Preprocessor,
    Refusal,
    SizeProblem,
    SocketType,
    boolean_input,
    draw_pose,
    enum_input,
    int_input,
    preprocessor_nodes,
    read_pose,
    resize_images,
    scale_size,
)


def _side(name: str) -> Input:
    return int_input(name, 0, min=0, max=MAX_SIDE)


def load_pose(
    ctx: NodeContext,
    pose: str,
    coordinates: str,
    frame: int,
    width: int,
    height: int,
    body: bool,
    hands: bool,
    face: bool,
) -> dict[str, object]:
    path = ctx.folders.resolve(INPUT_POSES, pose)
    given = (width, height) if width > 0 and height > 0 else None
    text = path.read_text(encoding="utf-8", errors="replace")
    read = read_pose(text, coordinates=coordinates, frame=frame, canvas=given)
    if read.canvas_width is None or read.canvas_height is None:
        if given is None:
            raise PoseFormatError(
                "canvas_width",
                f"{pose} gives no canvas size: set the node's width and height",
            )
        size: tuple[int, int] | SizeProblem = given
    else:
        size = scale_size(read.canvas_width, read.canvas_height, width, height)
        if not isinstance(size, SizeProblem) and max(size) > MAX_SIDE:
            size = SizeProblem(
                "canvas_width",
                f"{pose}'s canvas is {size[0]}x{size[1]}, "
                f"over {MAX_SIDE} pixels a side: set a smaller width and height",
            )
    if isinstance(size, SizeProblem):
        raise ValueError(size.message)
    image = draw_pose(read.people, *size, body=body, hands=hands, face=face)
    return {"image": image}


def load_pose_cost(query: CostQuery) -> Cost:
    width, height = query.integer("width"), query.integer("height")
    if not width or not height:
        return Cost()  # the size is the file's canvas, known when it is read
    return Cost(outputs={"image": Batch(width, height, 1, query.node_id)})


def pose_from_image(
    ctx: NodeContext, image: torch.Tensor, upscale_method: str, width: int, height: int
) -> torch.Tensor:
    size = scale_size(image.shape[2], image.shape[1], width, height)
    if isinstance(size, SizeProblem):
        raise ValueError(size.message)
    if size == (image.shape[2], image.shape[1]):
        return image.to(torch.float32)
    return resize_images(image, *size, upscale_method)


def pose_from_image_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    width, height = query.integer("width"), query.integer("height")
    if image is None or width is None or height is None:
        return Cost()
    size = scale_size(image.width, image.height, width, height)
    if isinstance(size, SizeProblem):
        return Cost(refusals=(Refusal(size.input, size.message),))
    return Cost(outputs={"image": Batch(size[0], size[1], image.count, query.node_id)})


NODES = [
    NodeSpec(
        id="preprocess.load_pose",
        display_name="Load Pose (OpenPose JSON)",
        aliases=("OpenPose JSON", "Load Openpose JSON", "Pose Keypoints"),
        category="image/preprocessors",
        description="Draws the people of an OpenPose JSON file from the input folder as the "
        "OpenPose skeleton (body, hands, face as chosen). Coordinates are canvas pixels "
        "(OpenPose's own) or fractions of the canvas. The picture is the file's canvas size "
        "unless width or height are set (0 follows the canvas's aspect ratio); a file without "
        "a canvas size needs both. frame picks one pose from a file that holds a list.",
        inputs=(
            enum_input("pose", DynamicChoices(INPUT_POSES)),
            enum_input("coordinates", POSE_COORDINATES),
            int_input("frame", 0, min=0, max=MAX_FRAMES - 1),
            _side("width"),
            _side("height"),
            boolean_input("body", True),
            boolean_input("hands", True),
            boolean_input("face", True),
        ),
        outputs=(Output("image", SocketType.IMAGE),),
        function=load_pose,
        cost=load_pose_cost,
    ),
    *preprocessor_nodes(
        Preprocessor(
            id="preprocess.pose_image",
            display_name="Pose (from Skeleton Image)",
            aliases=("OpenposePreprocessor", "Pose Image", "Openpose Skeleton"),
            description="A picture that already is an OpenPose skeleton, passed on as the "
            "pose ControlNet input; resized like Image Scale (a side of 0 follows the other, "
            "both 0 keep the size), nearest-exact by default so its colours stay exact.",
            inputs=(
                enum_input("upscale_method", UPSCALE_METHODS, "nearest-exact"),
                _side("width"),
                _side("height"),
            ),
            run=pose_from_image,
            cost=pose_from_image_cost,
        )
    ),
]
