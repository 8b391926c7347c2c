"""Held-frame runs and drawing timing on synthetic cartoons after H.264 compression."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.pipeline.held import (
    HeldAccumulator,
    detect_held_runs,
    dominant_timing,
    drawing_spans,
    drawn_frames,
)
from tests.pipeline.cartoon_synth import INDOOR, NIGHT, SKY_GRASS, h264, shot_frames


def truth_runs(n: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(s + step, n)) for s in range(0, n, step) if min(s + step, n) - s >= 2]


@pytest.mark.parametrize(("step", "timing"), [(2, "twos"), (3, "threes")])
@pytest.mark.parametrize("palette", [SKY_GRASS, NIGHT])
def test_runs_found_after_compression(tmp_path: Path, step: int, timing: str, palette):
    # walk=1 and arm swings: small drawing changes that a whole-frame SSIM alone misses.
    frames = h264(shot_frames(palette, 24, step=step, walk=1), tmp_path, crf=26)
    result = detect_held_runs(frames)
    assert result.runs == truth_runs(len(frames), step)
    assert drawn_frames(result.runs, len(frames)) == list(range(0, 24, step))
    assert dominant_timing(result.runs, len(frames)) == timing


def test_compressed_held_frames_are_not_bit_identical(tmp_path: Path):
    # Guards the premise of the test above: the codec really perturbs held drawings.
    frames = h264(shot_frames(SKY_GRASS, 24, step=2, walk=1), tmp_path, crf=26)
    assert any((frames[i] != frames[i + 1]).any() for i in range(0, 24, 2))


@pytest.mark.parametrize("walk", [0.0, 1.0, 3.0])
def test_no_runs_when_drawn_on_ones(tmp_path: Path, walk: float):
    # walk=0 still changes every drawing (arm swings only): the subtlest continuous motion.
    frames = h264(shot_frames(INDOOR, 24, step=1, walk=walk, seed=2), tmp_path, crf=26)
    result = detect_held_runs(frames)
    assert result.runs == []
    assert dominant_timing(result.runs, len(frames)) == "ones"
    assert drawn_frames(result.runs, len(frames)) == list(range(24))


def test_runs_never_span_a_cut(tmp_path: Path):
    a = shot_frames(SKY_GRASS, 9, step=3)
    b = shot_frames(NIGHT, 9, step=3, seed=1)
    result = detect_held_runs(h264(a + b, tmp_path))
    assert result.runs == truth_runs(9, 3) + [(s + 9, e + 9) for s, e in truth_runs(9, 3)]


def test_accumulator_matches_function_and_rejects_gaps():
    frames = shot_frames(SKY_GRASS, 12, step=2)
    acc = HeldAccumulator()
    flags = [acc.update(i, f) for i, f in enumerate(frames)]
    assert acc.result() == detect_held_runs(frames)
    assert flags == [i % 2 == 1 for i in range(12)]
    with pytest.raises(ValueError):
        acc.update(20, frames[0])


def test_timing_rule_counts_frames_and_ignores_long_holds():
    n = 40
    # 6 frames on ones, 12 on twos, a 22-frame hold: twos win, the hold does not vote.
    runs = [(6, 8), (8, 10), (10, 12), (12, 14), (14, 16), (16, 18), (18, 40)]
    assert dominant_timing(runs, n) == "twos"
    assert drawing_spans(runs, n)[:7] == [(i, i + 1) for i in range(6)] + [(6, 8)]
    assert dominant_timing([(0, 40)], n) == "threes"
    # Ties go to the faster timing: 6 frames on ones vs 6 frames on twos.
    assert dominant_timing([(6, 8), (8, 10), (10, 12)], 12) == "ones"
