import json
import re

import numpy as np
import pytest
from pycocotools.cocoeval import Params

from app.projects.skeletons import (
    BUILTIN_SKELETONS,
    COCO_WHOLEBODY,
    DEFAULT_SIGMA,
    Skeleton,
    as_pose,
    empty_pose,
    get_skeleton,
    pack_part_validity,
    part_boxes,
    part_validity,
    unpack_part_validity,
)

COCO_BODY_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip


def test_sizes_of_builtin_templates():
    sizes = {name: s.num_keypoints for name, s in BUILTIN_SKELETONS.items()}
    assert sizes == {"coco_wholebody": 133, "coco17": 17, "face68": 68, "animal": 17}
    for s in BUILTIN_SKELETONS.values():
        assert len(set(s.keypoints)) == s.num_keypoints
        assert len(s.sigmas) == s.num_keypoints
        assert get_skeleton(s.name) is s


def test_coco_wholebody_order_follows_the_official_layout():
    names = COCO_WHOLEBODY.keypoints
    assert list(names[:17]) == COCO_BODY_NAMES
    assert names[17:23] == ("left_big_toe", "left_small_toe", "left_heel",
                            "right_big_toe", "right_small_toe", "right_heel")  # fmt: skip
    assert names[23] == "face_0" and names[90] == "face_67"
    assert names[91] == "left_hand_wrist" and names[112] == "right_hand_wrist"
    assert names[92:96] == ("left_thumb1", "left_thumb2", "left_thumb3", "left_thumb4")
    assert names[96] == "left_forefinger1" and names[111] == "left_pinky_finger4"
    assert names[132] == "right_pinky_finger4"
    assert get_skeleton("coco17").keypoints == names[:17]
    assert get_skeleton("face68").keypoints == names[23:91]


def test_parts_partition_every_skeleton():
    for s in BUILTIN_SKELETONS.values():
        covered = sorted(i for idx in s.parts.values() for i in idx)
        assert covered == list(range(s.num_keypoints)), s.name
        assert set(s.part_colors) == set(s.parts)
    parts = {p: (min(i), max(i)) for p, i in COCO_WHOLEBODY.parts.items()}
    assert parts == {"body": (0, 16), "feet": (17, 22), "face": (23, 90),
                     "left_hand": (91, 111), "right_hand": (112, 132)}  # fmt: skip


def test_body_sigmas_are_cocos():
    # pycocotools is an independent copy of COCO's keypoint sigmas.
    coco = Params(iouType="keypoints").kpt_oks_sigmas
    np.testing.assert_allclose(get_skeleton("coco17").sigmas, coco)
    np.testing.assert_allclose(COCO_WHOLEBODY.sigmas[:17], coco)


def test_wholebody_sigmas_match_the_evaluation_code():
    # Spot values from COCO-WholeBody evaluation/myeval_wholebody.py (computeOks).
    s = dict(zip(COCO_WHOLEBODY.keypoints, COCO_WHOLEBODY.sigmas, strict=True))
    assert s["left_big_toe"] == 0.068 and s["right_heel"] == 0.094
    assert s["face_0"] == 0.042 and s["face_8"] == 0.020 and s["face_47"] == 0.034
    assert s["left_hand_wrist"] == s["right_hand_wrist"] == 0.029
    assert s["left_thumb4"] == 0.047 and s["right_pinky_finger4"] == 0.031
    assert get_skeleton("face68").sigmas == COCO_WHOLEBODY.sigmas[23:91]


def test_animal_is_ap10k():
    animal = get_skeleton("animal")
    assert animal.keypoints[:5] == ("left_eye", "right_eye", "nose", "neck", "root_of_tail")
    assert animal.keypoints[-3:] == ("right_hip", "right_knee", "right_back_paw")
    s = dict(zip(animal.keypoints, animal.sigmas, strict=True))
    assert s["left_eye"] == 0.025 and s["nose"] == 0.026 and s["left_hip"] == 0.107
    named = {(animal.keypoints[a], animal.keypoints[b]) for a, b in animal.edges}
    assert ("neck", "root_of_tail") in named and ("left_knee", "left_back_paw") in named
    assert len(animal.edges) == 17


def test_symmetric_pairs_mirror_left_and_right_names():
    for s in BUILTIN_SKELETONS.values():
        perm = s.mirror_permutation()
        assert sorted(perm) == list(range(s.num_keypoints))
        assert all(perm[perm[i]] == i for i in range(s.num_keypoints))
        for i, name in enumerate(s.keypoints):
            if name.startswith("left_"):
                assert s.keypoints[perm[i]] == "right_" + name[5:], s.name
            elif not name.startswith(("right_", "face_")):
                assert perm[i] == i, (s.name, name)  # nose, neck, tail stay put


def test_face_pairs_follow_the_ibug_layout():
    face = get_skeleton("face68")
    perm = face.mirror_permutation()
    groups = [range(0, 17), range(17, 27), range(27, 31), range(31, 36), range(36, 48),
              range(48, 60), range(60, 68)]  # fmt: skip
    for g in groups:
        assert all(perm[i] in g for i in g)
    # iBUG: chin, nose bridge and lip centres on the axis; corners mirror each other.
    assert [perm[i] for i in (8, 27, 30, 33, 51, 57, 62, 66)] == [8, 27, 30, 33, 51, 57, 62, 66]
    assert perm[0] == 16 and perm[36] == 45 and perm[39] == 42 and perm[48] == 54
    assert perm[60] == 64


def test_edges_form_hands_and_feet():
    s = COCO_WHOLEBODY
    for root in (91, 112):
        hand = {(a, b) for a, b in s.edges if root <= a < root + 21}
        assert len(hand) == 20  # a tree over 21 points
        reached = {root}
        while True:
            grown = reached | {b for a, b in hand if a in reached}
            if grown == reached:
                break
            reached = grown
        assert reached == set(range(root, root + 21))
    names = {(s.keypoints[a], s.keypoints[b]) for a, b in s.edges}
    assert ("left_ankle", "left_big_toe") in names and ("right_ankle", "right_heel") in names


def test_custom_skeleton_json_round_trip():
    custom = Skeleton.from_dict({
        "name": "blob",
        "keypoints": ["top", "left_arm", "right_arm", "bottom"],
        "edges": [["top", "left_arm"], [0, 2], ["top", "bottom"]],
        "symmetric_pairs": [["left_arm", "right_arm"]],
        "parts": {"head": ["top"], "limbs": [1, 2, 3]},
        "part_colors": {"head": "#112233"},
    })  # fmt: skip
    assert custom.edges == ((0, 1), (0, 2), (0, 3))
    assert custom.sigmas == (DEFAULT_SIGMA,) * 4
    assert custom.part_colors["head"] == "#112233" and custom.part_colors["limbs"].startswith("#")
    again = Skeleton.from_dict(json.loads(json.dumps(custom.to_dict())))
    assert again == custom and again.parts == custom.parts
    assert again.part_colors == custom.part_colors
    for s in BUILTIN_SKELETONS.values():
        assert Skeleton.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_custom_skeleton_defaults_to_one_part():
    s = Skeleton.from_dict({"name": "stick", "keypoints": ["a", "b"], "edges": [[0, 1]]})
    assert s.parts == {"body": (0, 1)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keypoints": ["a", "b", "a"]}, "duplicate keypoint names: a"),
        ({"edges": [[0, 5]]}, "edge (0, 5) is out of range for 3 keypoints"),
        ({"edges": [[1, 1]]}, "joins a keypoint to itself"),
        ({"edges": [["a", "zzz"]]}, "unknown keypoint 'zzz'"),
        ({"sigmas": [0.1, 0.0, 0.1]}, "sigma of 'b' must be a positive number"),
        ({"sigmas": [0.1, 0.1]}, "expected 3 sigmas, got 2"),
        ({"symmetric_pairs": [[0, 1], [1, 2]]}, "reuses a keypoint of another pair"),
        ({"symmetric_pairs": [[0, 0]]}, "must join two distinct keypoints"),
        ({"parts": {"x": [0, 1], "y": [1, 2]}}, "'b' is in parts 'x' and 'y'"),
        ({"parts": {"x": [0, 1]}}, "keypoints in no part: c"),
        ({"part_colors": {"body": "red"}}, "must be '#rrggbb'"),
        ({"name": " "}, "name must not be empty"),
    ],
)
def test_custom_skeleton_validation(change, message):
    data = {"name": "tri", "keypoints": ["a", "b", "c"], "edges": [[0, 1], [1, 2]]} | change
    with pytest.raises(ValueError, match=re.escape(message)):
        Skeleton.from_dict(data)


def test_unknown_builtin():
    with pytest.raises(ValueError, match="unknown skeleton 'zebra'"):
        get_skeleton("zebra")


def test_pose_array_helpers():
    pose = empty_pose(133)
    assert pose.shape == (133, 4) and pose.dtype == np.float32 and not pose.any()
    pose[5] = (10.5, 20.25, 2, 0.75)
    with pytest.raises(ValueError, match="shape"):
        as_pose(np.zeros((133, 3)))
    with pytest.raises(ValueError, match="visibility"):
        as_pose([[0, 0, 3, 0]])


def test_validity_and_boxes():
    s = COCO_WHOLEBODY
    pose = empty_pose(133)
    rng = np.random.default_rng(1)
    face = list(s.parts["face"])
    pose[face, :2] = rng.uniform(100, 200, size=(68, 2))
    pose[face, 2] = 2
    pose[face[:5], 2] = 1  # hidden points still count for the box
    feet = list(s.parts["feet"])
    pose[feet[0], :] = (50, 60, 2, 0.9)  # 1 of 6 visible: below a quarter
    valid = part_validity(pose, s)
    assert valid == {"body": False, "feet": False, "face": True, "left_hand": False,
                     "right_hand": False}  # fmt: skip
    boxes = part_boxes(pose, s)
    xs, ys = pose[face, 0], pose[face, 1]
    assert boxes["face"] == pytest.approx(
        (xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min())
    )
    assert boxes["feet"] is None and boxes["body"] is None
    pose[feet[1], :] = (70, 60, 2, 0.9)
    assert part_validity(pose, s)["feet"]
    assert part_boxes(pose, s)["feet"] == pytest.approx((50, 60, 20, 0))
    bits = pack_part_validity(valid, s)
    assert bits == 0b100
    assert unpack_part_validity(bits, s) == valid
