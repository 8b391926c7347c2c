"""Dominant colours named with a small fixed palette of everyday colour names.

Pixels are subsampled, clustered with k-means in CIE Lab (cv2.kmeans, k-means++ with a fixed
seed), and each cluster centre takes the nearest palette name in Lab. Clusters with the same
name are merged. It over-clusters (8 clusters) and keeps the `k` largest names,
because k clusters alone average distinct colours (outlines + props) into a muddy third one.
Shares are of all pixels, so they sum to less than 1 when smaller colours are cut.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from cv2.typing import MatLike

from app.media.decode import Image

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (10, 10, 10),
    "dark grey": (70, 70, 70),
    "grey": (128, 128, 128),
    "light grey": (200, 200, 200),
    "white": (250, 250, 250),
    "red": (220, 30, 30),
    "dark red": (130, 20, 25),
    "pink": (250, 160, 190),
    "orange": (250, 140, 20),
    "brown": (140, 85, 40),
    "dark brown": (90, 58, 38),
    "beige": (230, 210, 170),
    "yellow": (250, 220, 40),
    "olive": (128, 128, 30),
    "light green": (150, 230, 120),
    "grass green": (60, 170, 60),
    "dark green": (20, 90, 30),
    "teal": (0, 128, 128),
    "sky blue": (135, 206, 235),
    "blue": (45, 100, 210),
    "bright blue": (10, 30, 250),
    "navy": (20, 25, 110),
    "purple": (130, 50, 160),
    "lavender": (190, 160, 230),
    "magenta": (220, 40, 180),
}
MAX_PIXELS = 20000
CLUSTERS = 8


def _to_lab(rgb: Image) -> MatLike:
    """(N, 3) uint8 RGB -> (N, 3) float32 Lab (L 0..100)."""
    as_image = (rgb.reshape(-1, 1, 3).astype(np.float32)) / 255.0
    return cv2.cvtColor(as_image, cv2.COLOR_RGB2Lab).reshape(-1, 3)


_NAMES = list(PALETTE)
_PALETTE_LAB = _to_lab(np.array([PALETTE[n] for n in _NAMES], np.uint8))


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The palette name nearest to one RGB colour in Lab."""
    return _nearest(_to_lab(np.array([rgb], np.uint8)))[0]


def _nearest(lab: MatLike) -> list[str]:
    dist = np.linalg.norm(lab[:, None, :] - _PALETTE_LAB[None, :, :], axis=2)
    return [_NAMES[i] for i in dist.argmin(axis=1)]


def _pixels(frames_or_pixels: Image | Iterable[Image]) -> Image:
    if isinstance(frames_or_pixels, np.ndarray):
        chunks = [frames_or_pixels.reshape(-1, 3)]
    else:
        chunks = [f.reshape(-1, 3) for f in frames_or_pixels]
    per_chunk = max(1, MAX_PIXELS // max(1, len(chunks)))
    # An even stride keeps the sample deterministic and spread over each frame.
    sampled = [c[:: max(1, len(c) // per_chunk)] for c in chunks if len(c)]
    return np.concatenate(sampled) if sampled else np.empty((0, 3), np.uint8)


def dominant_colours(
    frames_or_pixels: Image | Iterable[Image], k: int = 3
) -> list[tuple[str, float]]:
    """(name, share of pixels) for the `k` main colours, largest share first.

    Accepts one RGB frame (H, W, 3), an (N, 3) pixel array, or an iterable of RGB frames.
    """
    pixels = _pixels(frames_or_pixels)
    if len(pixels) == 0:
        return []
    lab = _to_lab(pixels.astype(np.uint8))
    # Over-cluster, then keep the k largest names: k clusters alone blend distinct colours.
    clusters = max(1, min(max(k, CLUSTERS), len(np.unique(pixels, axis=0))))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    # k-means++ draws from OpenCV's global RNG; seeding it keeps the result reproducible.
    cv2.setRNGSeed(0)
    _, labels_out, centres = cv2.kmeans(
        lab, clusters, np.zeros((len(lab), 1), np.int32), criteria, 2, cv2.KMEANS_PP_CENTERS
    )
    counts = np.bincount(labels_out.reshape(-1), minlength=clusters)
    shares: dict[str, float] = {}
    for name, count in zip(_nearest(centres), counts, strict=True):
        shares[name] = shares.get(name, 0.0) + count / len(lab)
    ranked = sorted(shares.items(), key=lambda t: -t[1])[:k]
    return [(name, round(share, 3)) for name, share in ranked]
