"""How a character's detected held drawings compare with the generator's truth.

A frame is *held* when it shows the drawing of the frame before (it is in a held run and not
its first frame). Precision and recall count held frames where the character is in view; the
move error is how far the detected move puts the corners of the character's box from where
the true move puts them, on frames both call held within one true run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.media.drawings import DrawingRun, carry, run_at, runs_from_json
from app.samples.truth import Box, CharacterTruth


def held_frames(runs: Sequence[DrawingRun]) -> set[int]:
    return {frame for run in runs for frame in range(run.start + 1, run.end)}


@dataclass
class DrawingScore:
    """Held-frame counts and move errors (px), summed over characters."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    move_errors: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        held = self.true_positive + self.false_negative
        return self.true_positive / held if held else 1.0

    def add(self, other: DrawingScore) -> None:
        self.true_positive += other.true_positive
        self.false_positive += other.false_positive
        self.false_negative += other.false_negative
        self.move_errors += other.move_errors


def score_character(character: CharacterTruth, found: Sequence[DrawingRun]) -> DrawingScore:
    truth = runs_from_json(character["drawing_runs"])
    boxes = character["boxes"]
    in_view = {i for i, box in enumerate(boxes) if box is not None}
    true_held, found_held = held_frames(truth) & in_view, held_frames(found) & in_view
    score = DrawingScore(
        len(true_held & found_held), len(found_held - true_held), len(true_held - found_held)
    )
    for frame in sorted(true_held & found_held):
        true_run, found_run = run_at(truth, frame), run_at(list(found), frame)
        start_box = boxes[found_run.start] if found_run is not None else None
        if true_run is None or found_run is None or found_run.start not in true_run:
            continue
        if start_box is not None:
            score.move_errors.append(_move_error(start_box, true_run, found_run, frame))
    return score


def _move_error(box: Box, true_run: DrawingRun, found_run: DrawingRun, frame: int) -> float:
    x, y, w, h = box
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float32)
    expected = carry(corners, true_run.move_at(found_run.start), true_run.move_at(frame))
    got = carry(corners, found_run.move_at(found_run.start), found_run.move_at(frame))
    return float(np.hypot(*(expected - got).T).max())
