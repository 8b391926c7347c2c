"""Shot boundaries and per-shot camera motion on synthetic cartoon clips with known truth."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from app.media.decode import iter_frames
from app.pipeline.camera import camera_motion, frame_motions
from app.pipeline.shots import detect_shots
from app.samples.generator import make_clip
from tests.pipeline.cartoon_synth import INDOOR, NIGHT, SKY_GRASS, h264, shot_frames


def boundary_f1(pred: list[int], truth: list[int], tolerance: int = 1) -> float:
    """F1 of cut frames, each truth cut matched at most once within `tolerance` frames."""
    unmatched = list(truth)
    hits = 0
    for p in pred:
        match = next((t for t in unmatched if abs(t - p) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    if not pred or not truth:
        return float(pred == truth)
    precision, recall = hits / len(pred), hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def cuts_of(shots: list[tuple[int, int]]) -> list[int]:
    return [start for start, _ in shots[1:]]


@pytest.fixture(scope="module")
def edited_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], list[int]]:
    """Five shots: pans, a zoom, twos/threes/ones timing, and a cut between two shots that
    share a palette (the hardest cut for a colour-based detector)."""
    shots = [
        shot_frames(SKY_GRASS, 20, step=2, pan=(3, 0)),
        shot_frames(NIGHT, 16, step=3, zoom=1.4, seed=1),
        shot_frames(NIGHT, 18, step=2, seed=5, walk=-2),
        shot_frames(INDOOR, 20, step=1, seed=2, pan=(0, 2)),
        shot_frames(SKY_GRASS, 14, step=2, seed=9, pan=(-8, 0)),
    ]
    truth = [int(c) for c in np.cumsum([len(s) for s in shots])[:-1]]
    frames = h264([f for s in shots for f in s], Path(tmp_path_factory.mktemp("shots")))
    return frames, truth


def test_hard_cuts_found_exactly_and_shots_cover_clip(edited_clip):
    frames, truth = edited_clip
    shots = detect_shots(frames)
    assert shots[0][0] == 0 and shots[-1][1] == len(frames)
    assert all(a == b for (_, a), (b, _) in pairwise(shots))
    assert boundary_f1(cuts_of(shots), truth, tolerance=1) == 1.0


def test_drawing_changes_and_pans_do_not_cut():
    # One long shot: fast character on ones, then a fast pan on twos, then a whip pan on ones.
    frames = (
        shot_frames(NIGHT, 12, step=1, walk=6, seed=3)
        + shot_frames(NIGHT, 12, step=2, pan=(10, 0), seed=3)
        + shot_frames(NIGHT, 12, step=1, pan=(-30, 6), seed=3)
    )
    # The three parts are separate shots by construction; the joins are real cuts.
    assert cuts_of(detect_shots(frames, min_shot_len=1)) == [12, 24]


def test_min_shot_len_merges_flash_cuts():
    frames = shot_frames(SKY_GRASS, 10) + shot_frames(NIGHT, 3, seed=1) + shot_frames(INDOOR, 10)
    assert cuts_of(detect_shots(frames, min_shot_len=1)) == [10, 13]
    assert cuts_of(detect_shots(frames, min_shot_len=5)) == [10]


@pytest.mark.parametrize(("seed", "seconds"), [(1, 2.0), (47, 3.0), (52, 3.0)])
def test_cuts_between_painted_sets_under_the_content_threshold(
    tmp_path: Path, seed: int, seconds: float
):
    """Generated clips whose cut scores under ContentDetector's 27 (21.4, 13.8 and 22.6, each
    next to a zoom or a pan): the colour histogram confirms it (all three missed before)."""
    clip = make_clip(tmp_path, f"c{seed}", seed=seed, seconds=seconds)
    truth = [start for start, _ in clip.truth["shots"][1:]]
    assert len(truth) >= 1
    found = cuts_of(detect_shots(iter_frames(clip.path)))
    assert boundary_f1(found, truth, tolerance=2) == 1.0, (found, truth)


def test_empty_and_single_frame_clips():
    assert detect_shots([]) == []
    assert detect_shots(shot_frames(SKY_GRASS, 1)) == [(0, 1)]


CAMERA_CASES = [
    ("static", {}),
    ("pan_right", {"pan": (3, 0)}),  # camera moves right: content slides left
    ("pan_left", {"pan": (-3, 0)}),
    ("pan_down", {"pan": (0, 2)}),
    ("pan_up", {"pan": (0, -2)}),
    ("zoom_in", {"zoom": 1.4}),
    ("zoom_out", {"zoom": 1 / 1.4}),
    ("static", {"walk": 4}),  # a walking character alone is not camera motion
]


@pytest.mark.parametrize(("expected", "kwargs"), CAMERA_CASES)
def test_camera_motion_of_synthetic_shots(tmp_path: Path, expected: str, kwargs: dict):
    frames = h264(shot_frames(SKY_GRASS, 24, step=2, seed=7, **kwargs), tmp_path, crf=26)
    assert camera_motion(frame_motions(frames), (0, len(frames))) == expected


def test_camera_motion_is_per_shot_and_ignores_the_cut():
    a = shot_frames(SKY_GRASS, 16, step=2, pan=(4, 0))
    b = shot_frames(INDOOR, 16, step=2, seed=2)
    motions = frame_motions(a + b)
    assert camera_motion(motions, (0, 16)) == "pan_right"
    assert camera_motion(motions, (16, 32)) == "static"


def test_pan_displacement_matches_truth():
    frames = shot_frames(SKY_GRASS, 24, step=2, pan=(3, 0), walk=0)
    total_dx = sum(m.dx for m in frame_motions(frames))
    truth = -3 * 22 / frames[0].shape[1]  # last drawing starts at frame 22
    assert total_dx == pytest.approx(truth, rel=0.1)
