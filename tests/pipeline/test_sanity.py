import math

import numpy as np
import pytest

from app.pipeline.sanity import SanityThresholds, check_track
from app.projects.skeletons import COCO_WHOLEBODY, empty_pose, get_skeleton

S = COCO_WHOLEBODY
# A frontal figure about 200 px tall: the person's left is on the image's right.
BODY = {
    "nose": (100, 40), "left_eye": (105, 35), "right_eye": (95, 35), "left_ear": (110, 38),
    "right_ear": (90, 38), "left_shoulder": (120, 70), "right_shoulder": (80, 70),
    "left_elbow": (130, 100), "right_elbow": (70, 100), "left_wrist": (135, 130),
    "right_wrist": (65, 130), "left_hip": (112, 140), "right_hip": (88, 140),
    "left_knee": (115, 180), "right_knee": (85, 180), "left_ankle": (116, 220),
    "right_ankle": (84, 220),
}  # fmt: skip
FOOT = {"big_toe": (8, 8), "small_toe": (4, 10), "heel": (-2, 5)}
N = 12


def vec(x: float, y: float) -> np.ndarray:
    return np.array([x, y])


def figure(t: int) -> np.ndarray:
    """Frame t of a clean walk: the figure drifts right, both forearms swing gently, and
    hands, feet and face follow their anchors rigidly."""
    pose = empty_pose(133)
    shift = np.array([3.0 * t, 0.5 * t])
    angle = 0.15 * math.sin(t / 3)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = {k: np.array(v, dtype=float) for k, v in BODY.items()}
    for side in ("left", "right"):
        elbow = pts[f"{side}_elbow"]
        pts[f"{side}_wrist"] = elbow + rot @ (pts[f"{side}_wrist"] - elbow)
    for name, xy in pts.items():
        pose[S.index(name), :2] = xy + shift
    for side, sign in (("left", 1), ("right", -1)):
        ankle = pts[f"{side}_ankle"] + shift
        for part, (dx, dy) in FOOT.items():
            pose[S.index(f"{side}_{part}"), :2] = ankle + vec(sign * dx, dy)
        wrist = pts[f"{side}_wrist"] + shift
        root = S.index(f"{side}_hand_wrist")
        pose[root, :2] = wrist + vec(0, 3)
        for finger in range(5):
            a = math.radians(60 + 15 * finger) * sign
            for j in range(1, 5):
                r = 3 + 3 * j
                pose[root + 4 * finger + j, :2] = wrist + vec(r * math.cos(a), 3 + r * math.sin(a))
    nose = pts["nose"] + shift
    for i in range(68):
        a = 2 * math.pi * i / 68
        pose[23 + i, :2] = nose + vec(12 * math.cos(a), 14 * math.sin(a))
    pose[:, 2] = 2
    pose[:, 3] = 0.9
    return pose


def walk() -> list[np.ndarray]:
    return [figure(t) for t in range(N)]


def flagged(reasons: list[list[str]]) -> dict[int, list[str]]:
    return {t: r for t, r in enumerate(reasons) if r}


def test_clean_walk_raises_no_flag():
    assert flagged(check_track(walk(), S)) == {}
    assert flagged(check_track([p[:17] for p in walk()], get_skeleton("coco17"))) == {}


def test_a_point_that_jumps_and_comes_back_is_jitter():
    track = walk()
    track[5][S.index("left_wrist"), :2] += (40, -30)
    assert flagged(check_track(track, S)) == {5: ["jitter:left_wrist"]}


def test_a_bone_that_suddenly_doubles_is_flagged_once():
    track = walk()
    elbow, wrist = S.index("left_elbow"), S.index("left_wrist")
    for t in range(5, N):  # from frame 5 on the forearm is drawn twice as long
        track[t][wrist, :2] += track[t][wrist, :2] - track[t][elbow, :2]
    assert flagged(check_track(track, S)) == {5: ["bone:left_elbow-left_wrist"]}


def test_wrists_swapped_for_one_frame():
    track = walk()
    lw, rw = S.index("left_wrist"), S.index("right_wrist")
    track[5][[lw, rw]] = track[5][[rw, lw]]
    assert flagged(check_track(track, S)) == {5: ["swap:left_wrist/right_wrist"]}


def test_hands_swapped_from_a_frame_on_are_named_as_parts():
    track = walk()
    left, right = list(S.parts["left_hand"]), list(S.parts["right_hand"])
    for t in range(5, N):
        track[t][left + right] = track[t][right + left]
    assert flagged(check_track(track, S)) == {5: ["swap:left_hand/right_hand"]}


def test_checks_are_relative_to_body_scale():
    track = walk()
    track[5][S.index("left_wrist"), :2] += (40, -30)
    big = [p * (5, 5, 1, 1) for p in track]
    small = [p * (0.2, 0.2, 1, 1) for p in track]
    assert check_track(big, S) == check_track(small, S) == check_track(track, S)


def test_hidden_points_are_not_judged():
    track = walk()
    wrist = S.index("left_wrist")
    track[5][wrist, :2] += (40, -30)
    track[5][wrist, 2] = 1
    assert flagged(check_track(track, S)) == {}


def test_thresholds_are_parameters():
    jitter = walk()
    jitter[5][S.index("left_wrist"), :2] += (40, -30)
    assert flagged(check_track(jitter, S, SanityThresholds(jitter=1.0))) == {}
    # A forearm 20% longer from frame 5 on passes by default, not with a 10% tolerance.
    longer = walk()
    wrist, elbow = S.index("left_wrist"), S.index("left_elbow")
    for p in longer[5:]:
        p[wrist, :2] = p[elbow, :2] + 1.2 * (p[wrist, :2] - p[elbow, :2])
    assert flagged(check_track(longer, S)) == {}
    strict = SanityThresholds(bone_change=0.1)
    assert flagged(check_track(longer, S, strict)) == {5: ["bone:left_elbow-left_wrist"]}


@pytest.mark.parametrize("track", [[], [empty_pose(133)], [empty_pose(133)] * 3])
def test_empty_tracks(track):
    assert check_track(track, S) == [[] for _ in track]


def test_wrong_point_count_is_refused():
    with pytest.raises(ValueError, match="expected 133 points"):
        check_track([empty_pose(17)], S)
