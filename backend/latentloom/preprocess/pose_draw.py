"""A pose drawn as the OpenPose skeleton that ControlNet's pose models were trained on.

The picture follows ControlNet 1.1's annotator (`draw_bodypose`, `draw_handpose`,
`draw_facepose`): on black, each of the first 17 limbs of the COCO-18 limb list is a filled
ellipse from joint to joint, 4 pixels across each side of its axis, in its own colour; the
whole canvas is then dimmed to 60% (truncated to 8 bits), and each of the 18 joints is a disc
of radius 4 in its full colour on top. Hands: 20 bones as 2-pixel lines coloured round the HSV
hue circle, joints as blue discs of radius 4; face points as white discs of radius 3. Limb
list and colours are the published OpenPose data. Shapes are rasterised with Pillow instead of
OpenCV: the ellipse as a polygon through the same points OpenCV's `ellipse2Poly` takes (one per
degree, rounded), so a skeleton differs from the annotator's by at most a pixel at shape edges.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from latentloom.preprocess.openpose import Keypoint, Person, Points

# Joint pairs (1-based, COCO-18: 1 nose, 2 neck, 3-5 right arm, 6-8 left arm, 9-11 right leg,
# 12-14 left leg, 15-18 eyes and ears). The last two (ear to shoulder) are not drawn.
LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12),
    (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17), (6, 18),
)  # fmt: skip
DRAWN_LIMBS = 17
# Limb i and joint i share colour i (RGB).
COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
LIMB_HALF_WIDTH = 4
LIMB_DIMMING = 0.6
JOINT_RADIUS = 4
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip
HAND_LINE_WIDTH = 2
HAND_JOINT = (0, 0, 255)
FACE_RADIUS = 3
FACE_COLOUR = (255, 255, 255)


def hand_bone_colour(index: int) -> tuple[int, int, int]:
    """Bone `index` of 20: hue index/20 at full saturation and value."""
    red, green, blue = colorsys.hsv_to_rgb(index / len(HAND_BONES), 1.0, 1.0)
    return round(red * 255), round(green * 255), round(blue * 255)


def _pixel(point: Keypoint, width: int, height: int) -> tuple[int, int]:
    return int(point.x * width), int(point.y * height)


def limb_polygon(start: Keypoint, end: Keypoint, width: int, height: int) -> list[tuple[int, int]]:
    """The annotator's limb: an ellipse round the segment's midpoint, its major semi-axis half
    the segment, its minor 4 pixels, turned to the segment's angle (whole degrees)."""
    x0, y0, x1, y1 = start.x * width, start.y * height, end.x * width, end.y * height
    centre_x, centre_y = int((x0 + x1) / 2), int((y0 + y1) / 2)
    half_length = int(math.hypot(x1 - x0, y1 - y0) / 2)
    angle = math.radians(int(math.degrees(math.atan2(y0 - y1, x0 - x1))))
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    points: list[tuple[int, int]] = []
    for degree in range(361):
        along = half_length * math.cos(math.radians(degree))
        across = LIMB_HALF_WIDTH * math.sin(math.radians(degree))
        point = (
            round(centre_x + along * cos_a - across * sin_a),
            round(centre_y + along * sin_a + across * cos_a),
        )
        if not points or point != points[-1]:
            points.append(point)
    return points


def _disc(
    draw: ImageDraw.ImageDraw, centre: tuple[int, int], radius: int, colour: tuple[int, ...]
) -> None:
    x, y = centre
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def draw_bodies(canvas: Image.Image, people: tuple[Person, ...]) -> Image.Image:
    """Everyone's limbs, the canvas dimmed, then everyone's joints (the annotator's order)."""
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    for person in people:
        for (first, second), colour in zip(LIMBS[:DRAWN_LIMBS], COLOURS, strict=False):
            start, end = person.body[first - 1], person.body[second - 1]
            if start is not None and end is not None:
                draw.polygon(limb_polygon(start, end, width, height), fill=colour)
    # Dimmed as the annotator does: the uint8 canvas times 0.6, truncated.
    dimmed = (np.asarray(canvas, dtype=np.float64) * LIMB_DIMMING).astype(np.uint8)
    canvas = Image.fromarray(dimmed, "RGB")
    draw = ImageDraw.Draw(canvas)
    for person in people:
        for point, colour in zip(person.body, COLOURS, strict=True):
            if point is not None:
                _disc(draw, _pixel(point, width, height), JOINT_RADIUS, colour)
    return canvas


def draw_hand(canvas: Image.Image, hand: Points) -> None:
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    for index, (first, second) in enumerate(HAND_BONES):
        start, end = hand[first], hand[second]
        if start is not None and end is not None:
            line = [_pixel(start, width, height), _pixel(end, width, height)]
            draw.line(line, fill=hand_bone_colour(index), width=HAND_LINE_WIDTH)
    for point in hand:
        if point is not None:
            _disc(draw, _pixel(point, width, height), JOINT_RADIUS, HAND_JOINT)


def draw_face(canvas: Image.Image, face: Points) -> None:
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    for point in face:
        if point is not None:
            _disc(draw, _pixel(point, width, height), FACE_RADIUS, FACE_COLOUR)


def draw_pose(
    people: tuple[Person, ...],
    width: int,
    height: int,
    *,
    body: bool = True,
    hands: bool = True,
    face: bool = True,
) -> torch.Tensor:
    """The people's skeletons on a black width x height canvas, as a [1, H, W, 3] image.

    Everyone's limbs are drawn before anyone's joints (the annotator dims all limbs at once),
    then hands, then faces."""
    canvas = Image.new("RGB", (width, height))
    if body:
        canvas = draw_bodies(canvas, people)
    for person in people:
        for hand in (person.left_hand, person.right_hand):
            if hands and hand is not None:
                draw_hand(canvas, hand)
    for person in people:
        if face and person.face is not None:
            draw_face(canvas, person.face)
    pixels = np.asarray(canvas, dtype=np.float32) / 255.0
    return torch.from_numpy(pixels.copy()).unsqueeze(0)
