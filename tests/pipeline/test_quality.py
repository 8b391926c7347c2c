"""Quality scores, flags and dominant colours on synthetic cartoon frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.pipeline.camera import frame_motions
from app.pipeline.colours import PALETTE, colour_name, dominant_colours
from app.pipeline.quality import (
    QualityAccumulator,
    QualityScores,
    QualityThresholds,
    blur_score,
    motion_score,
    quality_flags,
    quality_scores,
    text_score,
)
from tests.pipeline.cartoon_synth import INDOOR, NIGHT, SKY_GRASS, shot_frames

PALETTES = [SKY_GRASS, NIGHT, INDOOR]


def subtitle(rgb: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Burn in a two-line subtitle, white with a black outline, as cartoons on TV do."""
    out = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    for y, line in ((230, "Where are you going?"), (262, "Wait for me!")):
        for colour, thick in (((0, 0, 0), 4), ((255, 255, 255), 2)):
            cv2.putText(
                out,
                line,
                (40, y),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale * 0.8,
                colour,
                thick,
                cv2.LINE_AA,
            )
    return out


def scores_of(frames: list[np.ndarray]) -> QualityScores:
    acc = QualityAccumulator(blur_every=4, text_every=12)
    for i, f in enumerate(frames):
        acc.update(i, f)
    return quality_scores(frame_motions(frames), [(0, len(frames))], acc.result())


def test_moving_clip_scores_more_motion_than_static_one():
    still = shot_frames(SKY_GRASS, 24, step=2, walk=0)
    walking = shot_frames(SKY_GRASS, 24, step=2, walk=3)
    panning = shot_frames(SKY_GRASS, 24, step=2, walk=0, pan=(4, 0))
    held = [still[0]] * 24
    m = [motion_score(frame_motions(f), [(0, 24)]) for f in (held, still, walking, panning)]
    assert m[0] == 0.0
    assert m[0] < m[1] < m[2] < m[3]


def test_motion_score_is_resolution_independent_and_skips_cuts():
    frames = shot_frames(NIGHT, 16, step=2, pan=(3, 0))
    big = [cv2.resize(f, None, fx=2, fy=2) for f in frames]
    small_score = motion_score(frame_motions(frames), [(0, 16)])
    assert motion_score(frame_motions(big), [(0, 16)]) == pytest.approx(small_score, rel=0.2)
    # Two static shots joined by a cut: the cut itself is not motion.
    cut = [frames[0]] * 8 + [shot_frames(INDOOR, 1)[0]] * 8
    assert motion_score(frame_motions(cut), [(0, 8), (8, 16)]) == 0.0
    assert motion_score(frame_motions(cut), [(0, 16)]) > 0.0


@pytest.mark.parametrize("palette", PALETTES)
def test_blurred_frames_score_blurrier(palette):
    sharp = shot_frames(palette, 1)[0]
    scores = [
        blur_score(cv2.GaussianBlur(sharp, (0, 0), s)) if s else blur_score(sharp)
        for s in (0, 1.5, 3.0)
    ]
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.parametrize("palette", PALETTES)
def test_subtitled_frame_scores_higher_text_likelihood(palette):
    frame = shot_frames(palette, 3, seed=4)[2]
    plain = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    assert text_score(plain) < 0.2
    assert text_score(subtitle(frame)) > 0.5


def test_flags_follow_thresholds_and_give_reasons():
    moving = shot_frames(SKY_GRASS, 24, step=2, walk=3)
    clean = scores_of(moving)
    assert quality_flags(clean, QualityThresholds()) == {}

    blurred_static = scores_of([cv2.GaussianBlur(subtitle(moving[0]), (0, 0), 4)] * 24)
    flags = quality_flags(blurred_static, QualityThresholds())
    assert set(flags) == {"static", "blurry"}
    assert all(reason for reason in flags.values())

    titled = scores_of([subtitle(f) for f in moving])
    assert "text_overlay" in quality_flags(titled, QualityThresholds())
    assert quality_flags(titled, QualityThresholds(max_text=1.0)) == {}


def test_named_flat_colours():
    frame = np.zeros((60, 100, 3), np.uint8)
    frame[:36] = PALETTE["sky blue"]
    frame[36:] = PALETTE["grass green"]
    names = dominant_colours(frame, k=3)
    assert [n for n, _ in names] == ["sky blue", "grass green"]
    assert [s for _, s in names] == pytest.approx([0.6, 0.4], abs=0.01)
    assert dominant_colours(np.full((8, 8, 3), (250, 220, 40), np.uint8)) == [("yellow", 1.0)]


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((0, 0, 0), "black"),
        ((255, 255, 255), "white"),
        ((255, 255, 0), "yellow"),
        ((128, 0, 128), "purple"),
        ((0, 0, 255), "bright blue"),
    ],
)
def test_colour_names_of_textbook_colours(rgb, name):
    assert colour_name(rgb) == name


def test_dominant_colours_of_cartoon_clip_name_its_palette():
    frames = shot_frames(SKY_GRASS, 6)
    top = [n for n, _ in dominant_colours(frames, k=2)]
    assert top == [colour_name(SKY_GRASS.sky), colour_name(SKY_GRASS.ground)]
    pixels = np.concatenate([f.reshape(-1, 3) for f in frames])
    assert dominant_colours(pixels, k=2)[0][0] == "sky blue"
