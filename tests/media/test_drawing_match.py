"""Per-character held drawings on generated clips whose drawings slide, pan and zoom."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from app.media.decode import Image, iter_frames
from app.media.drawing_match import DrawingFollower, find_drawings
from app.media.drawings import DrawingRun
from app.media.timing import drawing_timing
from app.samples.drawing_score import DrawingScore, score_character
from app.samples.generator import SampleClip, make_clip
from app.samples.truth import CharacterTruth

# Characters on twos and threes whose drawings move while held, and one clip on ones.
CLIPS: dict[str, dict[str, Any]] = {
    "slide_twos": {"seed": 201, "drawing_motion": "slide", "timing": "twos", "width": 480,
                   "kinds": ("humanoid", "animal"), "action": "walk"},
    "pan_twos": {"seed": 202, "drawing_motion": "pan", "timing": "twos", "width": 640,
                 "kinds": ("humanoid",), "action": "run", "shots": 2},
    "zoom_threes": {"seed": 203, "drawing_motion": "zoom", "timing": "threes", "width": 480,
                    "kinds": ("animal", "humanoid"), "action": "run"},
    "pan_threes": {"seed": 204, "drawing_motion": "pan", "timing": "threes", "width": 320,
                   "kinds": ("animal",), "action": "walk"},
    "slide_ones": {"seed": 205, "drawing_motion": "slide", "timing": "ones", "width": 480,
                   "kinds": ("humanoid", "animal"), "action": "run"},
}  # fmt: skip


@dataclass(frozen=True)
class Found:
    clip: SampleClip
    runs: list[list[DrawingRun]]  # per character

    def characters(self) -> list[tuple[CharacterTruth, list[DrawingRun]]]:
        return list(zip(self.clip.truth["characters"], self.runs, strict=True))


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Found]:
    folder: Path = tmp_path_factory.mktemp("drawings")
    out: dict[str, Found] = {}
    for name, knobs in CLIPS.items():
        clip = make_clip(folder, name, seconds=2.5, subsets=("pose", "i2v"), **knobs)
        frames = list(iter_frames(clip.path))
        shots = [(a, b) for a, b in clip.truth["shots"]]
        runs = [
            find_drawings(frames, [_box(b) for b in c["boxes"]], shots)
            for c in clip.truth["characters"]
        ]
        out[name] = Found(clip, runs)
    return out


def _box(box: list[float] | None) -> tuple[float, float, float, float] | None:
    return (box[0], box[1], box[2], box[3]) if box is not None else None


def test_held_drawings_that_slide_pan_and_zoom_are_found(found: dict[str, Found]) -> None:
    total = DrawingScore()
    for name in ("slide_twos", "pan_twos", "zoom_threes", "pan_threes"):
        for character, runs in found[name].characters():
            total.add(score_character(character, runs))
    assert total.true_positive > 150
    assert total.precision >= 0.95 and total.recall >= 0.95
    # each held frame is placed where the drawing really is
    assert np.median(total.move_errors) <= 0.5
    assert np.percentile(total.move_errors, 95) <= 1.5


def test_drawings_on_ones_are_not_held(found: dict[str, Found]) -> None:
    ones = found["slide_ones"]
    wrong = sum(
        score_character(character, runs).false_positive for character, runs in ones.characters()
    )
    frames = ones.clip.truth["frame_count"] * len(ones.runs)
    assert wrong <= 0.05 * frames


def test_each_character_gets_its_timing(found: dict[str, Found]) -> None:
    for entry in found.values():
        n = entry.clip.truth["frame_count"]
        for character, runs in entry.characters():
            visible = [box is not None for box in character["boxes"]]
            assert drawing_timing(runs, n, visible) == character["timing"]


def test_a_changed_drawing_is_new_and_a_slid_one_is_held() -> None:
    still = _sprite(arm_up=False)
    follower = DrawingFollower()
    follower.start(0, _frame(still, 40.0, 30.0), (40, 30, 60, 90))
    move = follower.check(1, _frame(still, 43.5, 30.75))
    assert move is not None
    assert move[0] == pytest.approx(1.0, abs=0.01)
    assert (move[1], move[2]) == pytest.approx((3.5, 0.75), abs=0.3)
    assert follower.check(2, _frame(_sprite(arm_up=True), 47.0, 31.5)) is None
    follower.start(2, _frame(_sprite(arm_up=True), 47.0, 31.5), (47, 31, 60, 90))
    assert [(run.start, run.end) for run in follower.runs()] == [(0, 2)]


def test_frames_must_come_in_order() -> None:
    follower = DrawingFollower()
    follower.start(0, _frame(_sprite(arm_up=False), 40.0, 30.0), (40, 30, 60, 90))
    with pytest.raises(ValueError, match="expected frame 1"):
        follower.check(2, _frame(_sprite(arm_up=False), 40.0, 30.0))


def test_timing_from_runs() -> None:
    def on(step: int, n: int) -> list[DrawingRun]:
        return [DrawingRun.still(i, min(i + step, n)) for i in range(0, n - 1, step)]

    assert drawing_timing(on(2, 24), 24) == "twos"
    assert drawing_timing(on(3, 24), 24) == "threes"
    assert drawing_timing([], 24) == "ones"
    assert drawing_timing(
        [*on(2, 12), *[DrawingRun.still(i, i + 3) for i in (12, 15, 18)]], 21
    ) == ("mixed")
    # frames without the character do not vote "ones"
    visible = [i < 12 for i in range(24)]
    assert drawing_timing(on(2, 12), 24, visible) == "twos"


def _sprite(*, arm_up: bool) -> Image:
    """A flat-colour figure with a dark outline on a transparent (zero) 60 x 90 sprite."""
    sprite = np.zeros((90, 60, 3), np.uint8)
    cv2.ellipse(sprite, (30, 15), (10, 12), 0, 0, 360, (240, 200, 170), -1, cv2.LINE_AA)
    cv2.rectangle(sprite, (18, 28), (42, 65), (200, 60, 60), -1, cv2.LINE_AA)
    cv2.rectangle(sprite, (18, 28), (42, 65), (20, 20, 20), 2, cv2.LINE_AA)
    arm_end = (55, 5) if arm_up else (55, 60)
    cv2.line(sprite, (40, 32), arm_end, (200, 60, 60), 6, cv2.LINE_AA)
    cv2.line(sprite, (22, 65), (18, 88), (40, 60, 140), 6, cv2.LINE_AA)
    cv2.line(sprite, (38, 65), (42, 88), (40, 60, 140), 6, cv2.LINE_AA)
    return sprite


def _frame(sprite: Image, x: float, y: float) -> Image:
    """The sprite pasted at a sub-pixel place on a still background with a horizon."""
    frame = np.full((180, 320, 3), (120, 190, 240), np.uint8)
    frame[110:] = (90, 170, 80)
    cv2.circle(frame, (250, 50), 20, (250, 230, 120), -1, cv2.LINE_AA)
    shift = np.array([[1, 0, x], [0, 1, y]], np.float32)
    placed = cv2.warpAffine(sprite, shift, (320, 180), flags=cv2.INTER_LINEAR)
    alpha = (
        cv2.warpAffine(
            (sprite.any(axis=2) * 255).astype(np.uint8), shift, (320, 180), flags=cv2.INTER_LINEAR
        )[..., None]
        / 255.0
    )
    return (frame * (1 - alpha) + placed * alpha).astype(np.uint8)
