import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2
from mediapipe.python.solutions import face_mesh_connections as fmc
from mediapipe.python.solutions.hands import HandLandmark
from mediapipe.python.solutions.pose import PoseLandmark

from app.pipeline.mediapipe_map import (
    FACE_FROM_MESH,
    FACE_OFFSET,
    LEFT_HAND_ANCHORS,
    RIGHT_HAND_ANCHORS,
    UNMAPPED_POINTS,
    holistic_found,
    holistic_to_coco_wholebody,
    mapping_table,
)
from app.projects.skeletons import COCO_WHOLEBODY, part_validity

W, H = 640, 480
DOC = Path(__file__).resolve().parents[2] / "docs" / "keypoint-mapping.md"
FIELDS = {"pose": "pose_landmarks", "face": "face_landmarks",
          "left_hand": "left_hand_landmarks", "right_hand": "right_hand_landmarks"}  # fmt: skip


def landmarks(xy, visibility=None):
    """A duck-typed MediaPipe landmark list: `.landmark` of objects with x, y, z, visibility."""
    vis = np.ones(len(xy)) if visibility is None else visibility
    return SimpleNamespace(landmark=[
        SimpleNamespace(x=float(x), y=float(y), z=0.0, visibility=float(v))
        for (x, y), v in zip(xy, vis, strict=True)
    ])  # fmt: skip


def distinct(n, x0, y0):
    """n distinct normalised points inside the image."""
    i = np.arange(n)
    return np.stack([x0 + 0.4 * i / n, y0 + 0.3 * ((i * 7) % n) / n], axis=1)


def fake_result(parts=("pose", "face", "left_hand", "right_hand"), pose_vis=None):
    src = {
        "pose": distinct(33, 0.30, 0.10),
        "face": distinct(468, 0.05, 0.05),
        "left_hand": distinct(21, 0.55, 0.6),
        "right_hand": distinct(21, 0.02, 0.65),
    }
    result = SimpleNamespace(**dict.fromkeys(FIELDS.values()))
    for part in parts:
        vis = pose_vis if part == "pose" else None
        setattr(result, FIELDS[part], landmarks(src[part], vis))
    return result, src


def test_every_point_comes_from_the_mediapipe_index_the_table_names():
    result, src = fake_result()
    pose = holistic_to_coco_wholebody(result, W, H)
    rows = mapping_table()
    assert [r.coco_index for r in rows] == list(range(133))
    for row in rows:
        if not row.source:
            assert row.coco_index in UNMAPPED_POINTS
            assert pose[row.coco_index].tolist() == [0, 0, 0, 0]
            continue
        expected = src[row.source][list(row.mediapipe_indices)].mean(axis=0) * (W, H)
        np.testing.assert_allclose(
            pose[row.coco_index, :2], expected, rtol=1e-5, err_msg=row.coco_name
        )
        assert pose[row.coco_index, 2] == 2
    assert set(UNMAPPED_POINTS) == {COCO_WHOLEBODY.index("left_small_toe"),
                                    COCO_WHOLEBODY.index("right_small_toe")}  # fmt: skip


def test_body_and_feet_follow_blazepose_names():
    # Independent reference: MediaPipe's own PoseLandmark enum.
    feet = {"big_toe": "foot_index", "heel": "heel"}
    for row in mapping_table():
        if row.source != "pose":
            continue
        mp_name = PoseLandmark(row.mediapipe_indices[0]).name.lower()
        side, _, rest = row.coco_name.partition("_")
        if row.coco_index < 17:
            assert mp_name == row.coco_name
        else:
            assert mp_name == f"{side}_{feet[rest]}"


def test_hands_follow_mediapipe_hand_order():
    fingers = {"thumb": "thumb", "index_finger": "forefinger", "middle_finger": "middle_finger",
               "ring_finger": "ring_finger", "pinky": "pinky_finger"}  # fmt: skip
    joints = {"cmc": 1, "mcp": 1, "pip": 2, "ip": 3, "dip": 3, "tip": 4}
    for row in mapping_table():
        if row.source not in ("left_hand", "right_hand"):
            continue
        side = row.source.split("_")[0]
        mp_name = HandLandmark(row.mediapipe_indices[0]).name.lower()
        if mp_name == "wrist":
            assert row.coco_name == f"{side}_hand_wrist"
            continue
        finger, joint = mp_name.rsplit("_", 1)
        # MediaPipe's thumb is cmc, mcp, ip, tip: the 2nd thumb joint is its mcp.
        number = 2 if finger == "thumb" and joint == "mcp" else joints[joint]
        assert row.coco_name == f"{side}_{fingers[finger]}{number}"


def test_face_points_use_mediapipes_own_regions():
    def vertices(connections):
        return {v for edge in connections for v in edge}

    regions = [
        (range(0, 17), fmc.FACEMESH_FACE_OVAL),
        (range(17, 22), fmc.FACEMESH_RIGHT_EYEBROW),
        (range(22, 27), fmc.FACEMESH_LEFT_EYEBROW),
        (range(27, 31), fmc.FACEMESH_NOSE),
        (range(36, 42), fmc.FACEMESH_RIGHT_EYE),
        (range(42, 48), fmc.FACEMESH_LEFT_EYE),
        (range(48, 68), fmc.FACEMESH_LIPS),
    ]
    for ibug, connections in regions:
        allowed = vertices(connections)
        for i in ibug:
            assert set(FACE_FROM_MESH[i]) <= allowed, i


def _oval_mirror():
    """Mirror map of the face oval: walk the ring from the top (10) both ways."""
    nbrs: dict[int, set[int]] = {}
    for a, b in fmc.FACEMESH_FACE_OVAL:
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    first, second = sorted(nbrs[10])
    walks = []
    for start in (first, second):
        walk, prev = [start], 10
        while len(walk) < len(nbrs) // 2:
            nxt = next(n for n in nbrs[walk[-1]] if n != prev)
            prev = walk[-1]
            walk.append(nxt)
        walks.append(walk)
    mirror = {10: 10}
    for a, b in zip(*walks, strict=True):
        mirror[a], mirror[b] = b, a
    return mirror


def test_jaw_uses_mirrored_oval_vertices():
    mirror = _oval_mirror()
    assert mirror[152] == 152  # the chin is on the axis
    for i in range(17):
        assert {mirror[v] for v in FACE_FROM_MESH[i]} == set(FACE_FROM_MESH[16 - i]), i


def test_left_hand_is_the_persons_left_hand():
    result, src = fake_result(parts=("pose", "left_hand"))
    pose = holistic_to_coco_wholebody(result, W, H)
    left, right = COCO_WHOLEBODY.parts["left_hand"], COCO_WHOLEBODY.parts["right_hand"]
    np.testing.assert_allclose(pose[list(left), :2], src["left_hand"] * (W, H), rtol=1e-5)
    assert not pose[list(right)].any()
    valid = part_validity(pose, COCO_WHOLEBODY)
    assert valid["left_hand"] and not valid["right_hand"] and not valid["face"]
    # BlazePose's left wrist feeds COCO's left wrist.
    lw = COCO_WHOLEBODY.index("left_wrist")
    np.testing.assert_allclose(
        pose[lw, :2], src["pose"][PoseLandmark.LEFT_WRIST] * (W, H), rtol=1e-5
    )


def test_points_outside_the_image_or_below_the_floor_are_unlabelled_suggestions():
    result, _ = fake_result(parts=("pose",))
    lms = result.pose_landmarks.landmark
    lms[PoseLandmark.LEFT_ANKLE].x, lms[PoseLandmark.LEFT_ANKLE].y = 0.5, 1.25
    lms[PoseLandmark.RIGHT_ANKLE].x, lms[PoseLandmark.RIGHT_ANKLE].y = -0.1, 0.5
    lms[PoseLandmark.NOSE].visibility = 0.2
    lms[PoseLandmark.LEFT_EYE].visibility = 0.5
    lms[PoseLandmark.RIGHT_EYE].visibility = 0.4
    pose = holistic_to_coco_wholebody(result, W, H)
    la, ra = COCO_WHOLEBODY.index("left_ankle"), COCO_WHOLEBODY.index("right_ankle")
    # Outside the frame: not labelled, at the model's own (unclamped) place, confidence kept.
    assert pose[la].tolist() == pytest.approx([0.5 * W, 1.25 * H, 0, 1.0])
    assert pose[ra].tolist() == pytest.approx([-0.1 * W, 0.5 * H, 0, 1.0])
    assert pose[0, 2] == 0 and pose[0, 3] == pytest.approx(0.2)  # below the floor (0.3)
    assert pose[1, 2] == 2  # at MediaPipe's drawing threshold: visible
    assert pose[2, 2] == 1  # above the floor, below that threshold: labelled, occluded
    assert holistic_to_coco_wholebody(result, W, H, confidence_floor=0.1)[0, 2] == 1
    assert holistic_to_coco_wholebody(result, W, H, confidence_floor=0.45)[2, 2] == 0


def test_face_and_hand_confidence_come_from_their_anchor_points():
    vis = np.linspace(0.05, 0.95, 33)
    result, _ = fake_result(pose_vis=vis)
    pose = holistic_to_coco_wholebody(result, W, H)
    face = list(COCO_WHOLEBODY.parts["face"])
    np.testing.assert_allclose(pose[face, 3], vis[:11].mean(), rtol=1e-6)
    np.testing.assert_allclose(
        pose[list(COCO_WHOLEBODY.parts["left_hand"]), 3],
        vis[list(LEFT_HAND_ANCHORS)].mean(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        pose[list(COCO_WHOLEBODY.parts["right_hand"]), 3],
        vis[list(RIGHT_HAND_ANCHORS)].mean(),
        rtol=1e-6,
    )
    # Face anchors average 0.2 here, below the confidence floor: the whole face is suggested.
    assert (pose[face, 2] == 0).all()


def test_real_protobuf_landmarks_use_presence_only_when_set():
    lst = landmark_pb2.NormalizedLandmarkList()
    for i in range(33):
        lm = lst.landmark.add(x=0.5, y=0.5, visibility=0.9)
        if i == PoseLandmark.LEFT_WRIST:
            lm.presence = 0.3
    result = SimpleNamespace(pose_landmarks=lst, face_landmarks=None,
                             left_hand_landmarks=None, right_hand_landmarks=None)  # fmt: skip
    pose = holistic_to_coco_wholebody(result, W, H)
    lw = COCO_WHOLEBODY.index("left_wrist")
    assert pose[lw, 3] == pytest.approx(0.3) and pose[lw, 2] == 1
    assert pose[0, 3] == pytest.approx(0.9) and pose[0, 2] == 2


def test_nothing_found():
    result, _ = fake_result(parts=())
    assert not holistic_found(result)
    assert not holistic_to_coco_wholebody(result, W, H).any()
    assert holistic_found(fake_result(parts=("face",))[0])


def test_refined_face_with_iris_points_is_accepted():
    result, _ = fake_result(parts=("face",))
    mesh = distinct(478, 0.05, 0.05)
    result.face_landmarks = landmarks(mesh)
    pose = holistic_to_coco_wholebody(result, W, H)
    np.testing.assert_allclose(pose[FACE_OFFSET + 8, :2], mesh[152] * (W, H), rtol=1e-5)


def test_malformed_results_are_refused():
    result, _ = fake_result(parts=("pose",))
    result.pose_landmarks.landmark = result.pose_landmarks.landmark[:20]
    with pytest.raises(ValueError, match="pose_landmarks: expected at least 33"):
        holistic_to_coco_wholebody(result, W, H)
    with pytest.raises(ValueError, match="image size"):
        holistic_to_coco_wholebody(fake_result()[0], 0, H)


def test_docs_table_matches_the_code():
    row_re = re.compile(r"^\| (\d+) \| (\w+) \| ([\w-]+) \| ([\d, -]+) \|", re.M)
    documented = {
        int(i): (name, "" if src == "-" else src,
                 tuple(int(v) for v in idx.split(",")) if idx.strip() != "-" else ())
        for i, name, src, idx in row_re.findall(DOC.read_text())
    }  # fmt: skip
    expected = {r.coco_index: (r.coco_name, r.source, r.mediapipe_indices)
                for r in mapping_table()}  # fmt: skip
    assert documented == expected
