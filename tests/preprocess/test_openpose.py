"""OpenPose JSON: the standard shape read into fractions of the canvas, BODY_25 put in COCO
order, missing keypoints, frames; and every malformed field refused by its path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from latentloom.preprocess.openpose import BODY_25_TO_COCO, Keypoint, PoseFormatError, read_pose
from tests.support import REPO

STANDING = REPO / "tests" / "fixtures" / "pose" / "standing.json"


def body(count: int = 18, missing: tuple[int, ...] = ()) -> list[float]:
    """Keypoint i at (10 i, 5 i), confidence 0 (missing) for the indices given."""
    flat: list[float] = []
    for index in range(count):
        flat += [10.0 * index, 5.0 * index, 0.0 if index in missing else 0.8]
    return flat


def document(**person: Any) -> str:
    return json.dumps({"people": [person], "canvas_width": 200, "canvas_height": 100})


def test_the_fixture_reads_as_fractions_of_its_canvas() -> None:
    pose = read_pose(STANDING.read_text(), coordinates="pixels")
    assert (pose.canvas_width, pose.canvas_height) == (256, 256)
    [person] = pose.people
    assert len(person.body) == 18
    assert person.body[0] == Keypoint(128 / 256, 40 / 256)  # the nose
    assert person.body[13] == Keypoint(150 / 256, 240 / 256)  # the left ankle
    assert person.left_hand is None and person.face is None


def test_confidence_0_is_missing_and_normalized_coordinates_are_kept() -> None:
    pose = read_pose(document(pose_keypoints_2d=body(missing=(3,))), coordinates="pixels")
    assert pose.people[0].body[3] is None
    assert pose.people[0].body[2] == Keypoint(0.1, 0.1)
    normalized = json.dumps({"people": [{"pose_keypoints_2d": [0.25, 0.5, 1.0] * 18}]})
    kept = read_pose(normalized, coordinates="normalized")
    assert kept.people[0].body[17] == Keypoint(0.25, 0.5) and kept.canvas_width is None


def test_body_25_drops_mid_hip_and_feet_into_coco_order() -> None:
    pose = read_pose(document(pose_keypoints_2d=body(25)), coordinates="pixels")
    points = pose.people[0].body
    assert len(points) == 18
    assert points[8] == Keypoint(90 / 200, 45 / 100)  # COCO right hip = BODY_25 index 9
    assert points[17] == Keypoint(180 / 200, 90 / 100)  # left ear = 18
    assert BODY_25_TO_COCO[7:9] == (7, 9)


def test_an_empty_body_is_a_person_without_body_keypoints() -> None:
    pose = read_pose(
        document(pose_keypoints_2d=[], face_keypoints_2d=[1.0, 1.0, 1.0] * 68), coordinates="pixels"
    )
    assert pose.people[0].body == (None,) * 18 and pose.people[0].face is not None


def test_hands_and_face_are_read_when_present() -> None:
    hand = [20.0, 10.0, 1.0] * 21
    face = [40.0, 20.0, 1.0] * 70
    text = document(pose_keypoints_2d=body(), hand_left_keypoints_2d=hand, hand_right_keypoints_2d=[],
                    face_keypoints_2d=face)  # fmt: skip
    person = read_pose(text, coordinates="pixels").people[0]
    assert person.left_hand is not None and len(person.left_hand) == 21
    assert person.left_hand[20] == Keypoint(0.1, 0.1)
    assert person.right_hand is None  # an empty list: no hand
    assert person.face is not None and person.face[0] == Keypoint(0.2, 0.2)


def test_a_list_of_frames_is_read_one_frame_at_a_time() -> None:
    frames = [
        json.loads(document(pose_keypoints_2d=body())),
        {"people": [], "canvas_width": 8, "canvas_height": 8},
    ]
    text = json.dumps(frames)
    assert len(read_pose(text, coordinates="pixels", frame=0).people) == 1
    assert read_pose(text, coordinates="pixels", frame=1).people == ()
    with pytest.raises(
        PoseFormatError, match=r"^frame: 2 is not a frame of this file, which holds 2$"
    ):
        read_pose(text, coordinates="pixels", frame=2)


def test_pixel_coordinates_use_the_callers_canvas_when_the_file_has_none() -> None:
    text = json.dumps({"people": [{"pose_keypoints_2d": body()}]})
    pose = read_pose(text, coordinates="pixels", canvas=(100, 50))
    assert pose.people[0].body[1] == Keypoint(0.1, 0.1)
    with pytest.raises(PoseFormatError) as error:
        read_pose(text, coordinates="pixels")
    assert error.value.field == "canvas_width"
    assert str(error.value).startswith(
        "canvas_width: missing: pixel coordinates need the canvas size"
    )


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("{", "", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[1]", "[0]", "expected an object, got int"),
        ('{"canvas_width": 10, "canvas_height": 10}', "people", "expected a list of people, got nothing"),
        ('{"people": [3], "canvas_width": 10, "canvas_height": 10}', "people[0]", "expected an object, got int"),
        ('{"people": [{}], "canvas_width": 10, "canvas_height": 10}', "people[0].pose_keypoints_2d", "missing"),
        (document(pose_keypoints_2d=[1.0] * 53), "people[0].pose_keypoints_2d",
         "has 53 numbers; expected 54 or 75 (x, y, confidence for each of 18 or 25 keypoints)"),
        (document(pose_keypoints_2d=[*body()[:4], "7", *body()[5:]]), "people[0].pose_keypoints_2d[4]",
         "expected a number, got '7'"),
        (document(pose_keypoints_2d=body(), hand_right_keypoints_2d=[1.0] * 60), "people[0].hand_right_keypoints_2d",
         "has 60 numbers; expected 63 (x, y, confidence for each of 21 keypoints)"),
        (document(pose_keypoints_2d=body(), face_keypoints_2d={"x": 1}), "people[0].face_keypoints_2d",
         "expected a list of numbers, got dict"),
        ('{"people": [], "canvas_width": 0, "canvas_height": 10}', "canvas_width", "must be at least 1, got 0"),
        ('{"people": [], "canvas_width": 10, "canvas_height": 2.5}', "canvas_height",
         "expected a whole number, got 2.5"),
    ],
)  # fmt: skip
def test_a_malformed_field_is_refused_by_its_path(text: str, field: str, message: str) -> None:
    with pytest.raises(PoseFormatError) as error:
        read_pose(text, coordinates="pixels")
    assert error.value.field == field
    assert str(error.value) == (f"{field}: {message}" if field else message)
