"""OpenPose JSON: people's keypoints as the OpenPose tools write them, checked field by field.

The format (OpenPose's `--write_json`, and the pose editors and ControlNet preprocessors that
save the same shape): `{"people": [{"pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d":
[...], "hand_right_keypoints_2d": [...], "face_keypoints_2d": [...]}], "canvas_width": W,
"canvas_height": H}`. The body has 18 keypoints (the COCO order ControlNet's pose models use) or
25 (OpenPose's default BODY_25, whose extra mid-hip and feet are dropped and the rest put in COCO
order); a hand has 21, a face 68 or 70. A keypoint with confidence 0 (OpenPose writes 0, 0, 0)
is missing. OpenPose itself writes no canvas size; the editors add it. Some tools save a list of
such objects, one per frame: `frame` picks one.

Coordinates are pixels of the canvas (OpenPose's own) or fractions of it, as the caller says; a
file never decides that by looking at its numbers. Every problem is a `PoseFormatError` naming
the field by its path, e.g. `people[0].pose_keypoints_2d`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

COORDINATES = ("pixels", "normalized")
BODY_FIELD = "pose_keypoints_2d"
HAND_FIELDS = ("hand_left_keypoints_2d", "hand_right_keypoints_2d")
FACE_FIELD = "face_keypoints_2d"
COCO_BODY = 18
BODY_25 = 25
HAND_POINTS = 21
FACE_POINTS = (68, 70)
# BODY_25 index of each COCO-18 keypoint (BODY_25 puts a mid-hip at 8 and feet after 18).
BODY_25_TO_COCO = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


class PoseFormatError(ValueError):
    """A pose file that does not have the OpenPose shape; `field` is the path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class Keypoint:
    """A position as a fraction of the canvas: (0, 0) top left, (1, 1) bottom right."""

    x: float
    y: float


Points = tuple[Keypoint | None, ...]  # None: a keypoint the file marks missing


@dataclass(frozen=True)
class Person:
    body: Points  # 18, COCO order
    left_hand: Points | None = None
    right_hand: Points | None = None
    face: Points | None = None


@dataclass(frozen=True)
class Pose:
    people: tuple[Person, ...]
    canvas_width: int | None  # None: the file does not say
    canvas_height: int | None


def read_pose(
    text: str,
    *,
    coordinates: str,
    frame: int = 0,
    canvas: tuple[int, int] | None = None,
) -> Pose:
    """A pose file's text as a `Pose`. `canvas` (width, height) is used when the file gives no
    canvas size; pixel coordinates need one or the other."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PoseFormatError("", f"not JSON: {error}") from error
    if coordinates not in COORDINATES:
        raise ValueError(f"unknown coordinates {coordinates!r}; expected one of {COORDINATES}")
    document, where = _frame(document, frame)
    width = _side(document, "canvas_width", where)
    height = _side(document, "canvas_height", where)
    scale = (1.0, 1.0)
    if coordinates == "pixels":
        size = (width, height) if width is not None and height is not None else canvas
        if size is None:
            raise PoseFormatError(
                f"{where}canvas_width",
                "missing: pixel coordinates need the canvas size; give the node a width and "
                "height, or use normalized coordinates",
            )
        scale = (1.0 / size[0], 1.0 / size[1])
    people = document.get("people")
    if not isinstance(people, list):
        raise PoseFormatError(f"{where}people", f"expected a list of people, got {_kind(people)}")
    persons = tuple(_person(p, f"{where}people[{i}]", scale) for i, p in enumerate(people))
    return Pose(persons, width, height)


def _frame(document: Any, frame: int) -> tuple[dict[str, Any], str]:
    if isinstance(document, list):
        if not 0 <= frame < len(document):
            raise PoseFormatError(
                "frame", f"{frame} is not a frame of this file, which holds {len(document)}"
            )
        document, where = document[frame], f"[{frame}]."
    else:
        if frame != 0:
            raise PoseFormatError("frame", f"{frame}: this file holds one pose; use frame 0")
        where = ""
    if not isinstance(document, dict):
        raise PoseFormatError(where.rstrip(".") or "", f"expected an object, got {_kind(document)}")
    return document, where


def _side(document: dict[str, Any], name: str, where: str) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise PoseFormatError(f"{where}{name}", f"expected a whole number, got {value!r}")
    if value < 1:
        raise PoseFormatError(f"{where}{name}", f"must be at least 1, got {value!r}")
    return int(value)


def _person(person: Any, where: str, scale: tuple[float, float]) -> Person:
    if not isinstance(person, dict):
        raise PoseFormatError(where, f"expected an object, got {_kind(person)}")
    raw_body = person.get(BODY_FIELD)
    if raw_body is None:
        raise PoseFormatError(f"{where}.{BODY_FIELD}", "missing")
    if raw_body == []:  # nobody's body detected (hands or a face alone)
        raw_body = [0.0] * 3 * COCO_BODY
    body = _points(raw_body, f"{where}.{BODY_FIELD}", (COCO_BODY, BODY_25), scale)
    if len(body) != COCO_BODY:
        body = tuple(body[i] for i in BODY_25_TO_COCO)
    hands = [_optional(person, field, where, (HAND_POINTS,), scale) for field in HAND_FIELDS]
    face = _optional(person, FACE_FIELD, where, FACE_POINTS, scale)
    return Person(body, hands[0], hands[1], face)


def _optional(
    person: dict[str, Any],
    field: str,
    where: str,
    counts: tuple[int, ...],
    scale: tuple[float, float],
) -> Points | None:
    raw = person.get(field)
    if raw is None or raw == []:
        return None
    return _points(raw, f"{where}.{field}", counts, scale)


def _points(raw: Any, where: str, counts: tuple[int, ...], scale: tuple[float, float]) -> Points:
    if not isinstance(raw, list):
        raise PoseFormatError(where, f"expected a list of numbers, got {_kind(raw)}")
    allowed = " or ".join(str(3 * n) for n in counts)
    if len(raw) not in {3 * n for n in counts}:
        raise PoseFormatError(
            where,
            f"has {len(raw)} numbers; expected {allowed} (x, y, confidence for each of "
            f"{' or '.join(map(str, counts))} keypoints)",
        )
    for index, value in enumerate(raw):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise PoseFormatError(f"{where}[{index}]", f"expected a number, got {value!r}")
    points: list[Keypoint | None] = []
    for start in range(0, len(raw), 3):
        x, y, confidence = raw[start : start + 3]
        points.append(Keypoint(x * scale[0], y * scale[1]) if confidence > 0 else None)
    return tuple(points)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
