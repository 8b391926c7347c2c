"""Per-clip quality scores (motion, blur, on-screen text) and the flags they raise.

- motion: mean dense optical-flow length per frame, in percent of the frame's long side,
  averaged over every frame pair inside a shot (pairs across cuts are skipped; held frames
  count as zero, which makes the score independent of the drawing timing).
- blur: scikit-image's ``blur_effect`` (Crete et al. 2007: how much a re-blur changes the
  image; 0 sharp .. 1 blurry), median over sampled frames at long side 256. It is normalised by
  the image's own content, unlike a raw variance of the Laplacian, which mostly measures how
  many outlines a flat-colour cartoon has.
- text: likelihood of on-screen text from OpenCV's Stroke Width Transform (``cv2.text``, no
  model weights), run at long side 640 (it finds nothing in letters under ~10 px). Letter
  candidates (>= 2 % of the frame height, not sliver-shaped) are counted inside horizontal
  chains (text lines) holding at least 4 of them that cover >= 60 % of the line's width (a
  row of scattered shapes does not), and mapped to 0..1; the clip's
  score is the maximum over sampled frames, since captions and titles often cover only part
  of a clip. Weakness: it is a geometric heuristic; rows of evenly stroked shapes (fences,
  striped props) can look like text, and big bold titles or stylised lettering can be missed.
Flags only annotate a clip for a human decision; they never delete anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from cv2.typing import MatLike
from skimage.measure import blur_effect

from app.media.decode import Image
from app.pipeline.camera import PairMotion
from app.pipeline.held import resize_long_side

BLUR_LONG_SIDE = 256
TEXT_LONG_SIDE = 640
# Letters needed for a text score of 1 - 1/e (~0.63).
TEXT_LETTER_SCALE = 6.0
MIN_LETTER_HEIGHT = 0.02  # of the frame height
MAX_LETTER_ASPECT = 2.5  # width / height
MIN_LINE_LETTERS = 4
MIN_LINE_FILL = 0.6  # share of the line's width covered by its letters


def motion_score(motions: Sequence[PairMotion], shots: Sequence[tuple[int, int]]) -> float:
    """Mean optical-flow length per frame, percent of the long side, within shots."""
    values = [m.magnitude for start, end in shots for m in motions[start + 1 : end]]
    return 100.0 * float(np.mean(values)) if values else 0.0


def blur_score(rgb: Image) -> float:
    """0 (sharp) .. 1 (blurry), see the module docstring."""
    grey = cv2.cvtColor(resize_long_side(rgb, BLUR_LONG_SIDE), cv2.COLOR_RGB2GRAY)
    return float(blur_effect(grey))


def _letters_in_lines(bgr: MatLike, dark_on_light: bool) -> int:
    letters, _, chains = cv2.text.detectTextSWT(bgr, dark_on_light)
    if chains is None or len(letters) == 0:
        return 0
    height = bgr.shape[0]
    # Letter-shaped candidates: tall enough to read, not long thin slivers of an outline.
    boxes = [
        (int(x), int(w), y + h / 2)
        for x, y, w, h in np.asarray(letters).reshape(-1, 4)
        if h >= MIN_LETTER_HEIGHT * height and w <= MAX_LETTER_ASPECT * h
    ]
    count = 0
    for x, y, w, h in np.asarray(chains).reshape(-1, 4):
        # Horizontal lines of plausible text height; OpenCV pads chains with a sentinel box.
        if not (h > 0 and w >= 2 * h and MIN_LETTER_HEIGHT * height <= h <= 0.2 * height):
            continue
        inside = [
            (bx, bw) for bx, bw, cy in boxes if x <= bx + bw / 2 <= x + w and y <= cy <= y + h
        ]
        covered = np.zeros(w, bool)  # letters of a text line fill most of its width
        for bx, bw in inside:
            covered[max(0, bx - x) : bx - x + bw] = True
        if len(inside) >= MIN_LINE_LETTERS and covered.mean() >= MIN_LINE_FILL:
            count += len(inside)
    return count


def text_score(rgb: Image) -> float:
    """0..1 likelihood that the frame shows text (see the module docstring)."""
    bgr = np.ascontiguousarray(
        cv2.cvtColor(resize_long_side(rgb, TEXT_LONG_SIDE, upscale=True), cv2.COLOR_RGB2BGR)
    )
    letters = max(_letters_in_lines(bgr, True), _letters_in_lines(bgr, False))
    return 1.0 - math.exp(-letters / TEXT_LETTER_SCALE)


@dataclass
class FrameSamples:
    """Blur and text scores of the sampled frames."""

    blur: list[float] = field(default_factory=list)
    text: list[float] = field(default_factory=list)


class QualityAccumulator:
    """Scores blur every `blur_every` frames and text every `text_every` frames (text is slow)."""

    def __init__(self, blur_every: int = 6, text_every: int = 24) -> None:
        self.blur_every = blur_every
        self.text_every = text_every
        self._samples = FrameSamples()

    def update(self, index: int, rgb: Image) -> None:
        if index % self.blur_every == 0:
            self._samples.blur.append(blur_score(rgb))
        if index % self.text_every == 0:
            self._samples.text.append(text_score(rgb))

    def result(self) -> FrameSamples:
        return self._samples


@dataclass(frozen=True)
class QualityScores:
    motion: float
    blur: float
    text: float


def quality_scores(
    motions: Sequence[PairMotion], shots: Sequence[tuple[int, int]], samples: FrameSamples
) -> QualityScores:
    """Clip scores from the motion pass and the sampled frames."""
    return QualityScores(
        motion=motion_score(motions, shots),
        blur=float(np.median(samples.blur)) if samples.blur else 0.0,
        text=max(samples.text, default=0.0),
    )


@dataclass(frozen=True)
class QualityThresholds:
    """Admin-set limits; the defaults were picked on synthetic cartoon clips."""

    min_motion: float = 0.05
    max_blur: float = 0.5
    max_text: float = 0.4


def quality_flags(scores: QualityScores, thresholds: QualityThresholds) -> dict[str, str]:
    """Flag name -> human-readable reason, for every limit the clip breaks."""
    flags: dict[str, str] = {}
    if scores.motion < thresholds.min_motion:
        flags["static"] = (
            f"motion {scores.motion:.3f}% of frame per frame < {thresholds.min_motion:.3f}"
        )
    if scores.blur > thresholds.max_blur:
        flags["blurry"] = f"blur {scores.blur:.2f} > {thresholds.max_blur:.2f}"
    if scores.text > thresholds.max_text:
        flags["text_overlay"] = (
            f"on-screen text likelihood {scores.text:.2f} > {thresholds.max_text:.2f}"
        )
    return flags
