"""Drawing timing (on ones, twos, threes, or mixed) from held runs.

A drawing shown for 1, 2 or 3 frames votes "ones", "twos", "threes" with its frame count;
longer drawings are holds (a pause, not the animation's timing) and do not vote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from app.media.drawings import DrawingRun

DrawingTiming = Literal["ones", "twos", "threes", "mixed"]
TIMING_NAMES: dict[int, Literal["ones", "twos", "threes"]] = {1: "ones", 2: "twos", 3: "threes"}
# Below this share of the votes the winning timing does not describe the character: "mixed".
MIXED_BELOW = 2 / 3


def drawing_spans(runs: Iterable[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Every drawing as a half-open frame span: the held runs plus single-frame drawings."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for start, end in sorted(runs):
        spans.extend((i, i + 1) for i in range(pos, start))
        spans.append((start, end))
        pos = end
    spans.extend((i, i + 1) for i in range(pos, n))
    return spans


def timing_votes(spans: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Frames shown by drawings lasting 1, 2 and 3 frames."""
    votes = {1: 0, 2: 0, 3: 0}
    for start, end in spans:
        if end - start in votes:
            votes[end - start] += end - start
    return votes


def drawing_timing(
    runs: list[DrawingRun], frame_count: int, visible: Sequence[bool] | None = None
) -> DrawingTiming:
    """A character's timing from its held runs over ``frame_count`` frames.

    ``visible[i]`` False leaves frame i out (the character is not in it), so absent frames do
    not vote "ones". The timing covering the most voting frames wins, ties to the faster one;
    under two thirds of the votes it is "mixed". No voting drawing (one long hold) is "threes".
    """
    spans = drawing_spans([(run.start, run.end) for run in runs], frame_count)
    if visible is not None:
        spans = [(a, b) for a, b in spans if b - a > 1 or visible[a]]
    votes = timing_votes(spans)
    total = sum(votes.values())
    if not total:
        return "threes"
    best = max(votes, key=lambda k: (votes[k], -k))
    return TIMING_NAMES[best] if votes[best] >= MIXED_BELOW * total else "mixed"
