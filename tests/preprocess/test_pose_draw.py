"""The OpenPose skeleton as ControlNet's annotator draws it: joint colours at joint centres,
limb colours dimmed to 60% at limb midpoints, hands and face, draw order between people."""

from __future__ import annotations

import torch

from latentloom.preprocess.openpose import Keypoint, Person, read_pose
from latentloom.preprocess.pose_draw import COLOURS, LIMBS, draw_pose, hand_bone_colour
from tests.support import REPO

STANDING = REPO / "tests" / "fixtures" / "pose" / "standing.json"
# The fixture's joints in pixels of its 256x256 canvas, COCO-18 order.
JOINTS = [
    (128, 40), (128, 70), (100, 70), (90, 110), (84, 150), (156, 70), (166, 110), (172, 150),
    (110, 150), (108, 195), (106, 240), (146, 150), (148, 195), (150, 240), (122, 34),
    (134, 34), (114, 38), (142, 38),
]  # fmt: skip


def pixels(image: torch.Tensor) -> torch.Tensor:
    """[1, H, W, 3] in 0..1 as [H, W, 3] 8-bit values."""
    return (image[0] * 255).round().to(torch.int64)


def standing(**parts: bool) -> torch.Tensor:
    people = read_pose(STANDING.read_text(), coordinates="pixels").people
    return pixels(draw_pose(people, 256, 256, **parts))


def test_each_joint_is_its_openpose_colour_at_full_strength() -> None:
    image = standing()
    for index, (x, y) in enumerate(JOINTS):
        assert tuple(image[y, x].tolist()) == COLOURS[index], index


def test_each_limb_is_its_colour_dimmed_to_60_percent_at_its_midpoint() -> None:
    image = standing()
    assert len(LIMBS) == 19
    # Limbs 13 and 15 (nose to eyes) are shorter than a joint disc: their middles are joints.
    for index in [*range(13), 14, 16]:
        first, second = LIMBS[index]
        (x0, y0), (x1, y1) = JOINTS[first - 1], JOINTS[second - 1]
        midpoint = image[int((y0 + y1) / 2), int((x0 + x1) / 2)]
        assert tuple(midpoint.tolist()) == tuple(int(c * 0.6) for c in COLOURS[index]), index
    assert tuple(image[70, 114].tolist()) == (153, 0, 0)  # neck to right shoulder: 255 x 0.6


def test_limbs_are_9_pixels_across_and_the_background_is_black() -> None:
    image = standing()
    # Right hip to right knee runs nearly vertically through (109, 172): 4 pixels each side.
    row = image[172, 100:120].sum(dim=1)
    assert (row > 0).sum() == 9
    assert image[0:20, 0:256].sum() == 0 and image[:, 0:60].sum() == 0


def test_body_hands_and_face_can_each_be_left_out() -> None:
    assert standing(body=False).sum() == 0  # the fixture has neither hands nor a face
    assert standing(hands=False, face=False).sum() == standing().sum()


def hand_person() -> Person:
    # A hand whose wrist is at (0.5, 0.5) and whose first bone runs 0.25 to the right; the
    # other keypoints are missing, so only bone 0 and two joints are drawn.
    points: list[Keypoint | None] = [None] * 21
    points[0], points[1] = Keypoint(0.5, 0.5), Keypoint(0.75, 0.5)
    face: list[Keypoint | None] = [Keypoint(0.25, 0.25), *[None] * 67]
    return Person(body=(None,) * 18, left_hand=tuple(points), face=tuple(face))


def test_hand_bones_are_hue_coloured_lines_joints_blue_and_face_points_white() -> None:
    image = pixels(draw_pose((hand_person(),), 64, 64))
    assert tuple(image[32, 40].tolist()) == hand_bone_colour(0) == (255, 0, 0)
    assert tuple(image[32, 32].tolist()) == (0, 0, 255)  # the wrist
    assert tuple(image[32, 48].tolist()) == (0, 0, 255)
    assert tuple(image[16, 16].tolist()) == (255, 255, 255)  # the face point, radius 3
    assert tuple(image[16, 19].tolist()) == (255, 255, 255) and image[16, 21].sum() == 0
    assert hand_bone_colour(5) == (128, 255, 0)  # hue 0.25: half red, full green
    no_hands = pixels(draw_pose((hand_person(),), 64, 64, hands=False))
    assert no_hands[32, 40].sum() == 0 and no_hands[16, 16].sum() == 255 * 3


def test_all_limbs_are_drawn_before_anyones_joints() -> None:
    # Person 1's neck-to-right-shoulder limb crosses person 0's nose: the nose stays on top.
    nose_only: list[Keypoint | None] = [Keypoint(0.5, 0.5), *[None] * 17]
    limb: list[Keypoint | None] = [None] * 18
    limb[1], limb[2] = Keypoint(0.25, 0.5), Keypoint(0.75, 0.5)
    image = pixels(draw_pose((Person(tuple(nose_only)), Person(tuple(limb))), 64, 64))
    assert tuple(image[32, 32].tolist()) == COLOURS[0]
    assert tuple(image[32, 24].tolist()) == (153, 0, 0)
