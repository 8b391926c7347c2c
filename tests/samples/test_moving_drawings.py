"""Held drawings that slide or go under camera pans and zooms, and their per-character truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from app.media.drawings import IDENTITY, carry, runs_from_json
from app.samples.generator import PROFILES, SampleClip
from app.samples.sliding import SAME_DRAWING_PX, landmarks
from tests.samples.conftest import decode_frames, frame_diffs


@pytest.mark.parametrize("motion", ["slide", "pan", "zoom"])
def test_each_move_carries_the_held_drawing_onto_its_frame(
    clip_factory: Callable[..., SampleClip], motion: str
) -> None:
    clip = clip_factory(
        f"moving_{motion}", seed=31, drawing_motion=motion, timing="twos", width=480,
        seconds=2.0, kinds=["humanoid", "animal"], subsets=["pose"], action="walk",
    )  # fmt: skip
    checked = 0
    for character in clip.truth["characters"]:
        runs = runs_from_json(character["drawing_runs"])
        keypoints = character["keypoints"]
        assert keypoints is not None and runs
        moved = 0
        for run in runs:
            first = landmarks(keypoints[run.start], None)
            for frame in range(run.start + 1, run.end):
                here = landmarks(keypoints[frame], None)
                carried = carry(first, IDENTITY, run.move_at(frame))
                seen = np.isfinite(carried).all(axis=1) & np.isfinite(here).all(axis=1)
                assert np.hypot(*(carried[seen] - here[seen]).T).max() <= SAME_DRAWING_PX
                moved += run.move_at(frame) != IDENTITY
                checked += 1
        assert moved > 0  # the drawings really move while held
    assert checked > 40


def test_camera_moves_on_ones_so_whole_frames_never_repeat(
    clip_factory: Callable[..., SampleClip],
) -> None:
    clip = clip_factory(
        "pan_on_ones", seed=32, drawing_motion="pan", timing="threes", width=320, seconds=1.5,
        kinds=["animal"], subsets=["i2v"],
    )  # fmt: skip
    assert clip.truth["held_runs"] == []
    assert all(camera["motion"] in ("pan_left", "pan_right") for camera in clip.truth["camera"])
    assert (frame_diffs(decode_frames(clip.path)) > 0.05).all()
    (animal,) = clip.truth["characters"]
    assert animal["timing"] == "threes" and animal["drawing_runs"]


def test_the_sample_set_covers_moving_drawings() -> None:
    motions = {profile.get("drawing_motion", "held") for profile in PROFILES}
    assert motions == {"held", "slide", "pan", "zoom"}
