"""Skeletons drawn on pictures: the pose videos of the training packages and the dataset
card's contact sheet draw the same way (edges and joints in the skeleton's part colours)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from app.media.decode import Image
from app.projects.skeletons import COCO_WHOLEBODY, V, X, Y

LINE_WIDTH = 2
JOINT_RADIUS = 3


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


PART_OF = {i: part for part, idx in COCO_WHOLEBODY.parts.items() for i in idx}
COLOURS = {part: _rgb(c) for part, c in COCO_WHOLEBODY.part_colors.items()}


def draw_poses(canvas: Image, people: Sequence[npt.NDArray[np.float32]]) -> None:
    """Draw on the RGB ``canvas`` the labelled points of each 133-point pose (x, y, v, ...)
    of ``people`` and the edges between two labelled points."""
    for pose in people:
        labelled = pose[:, V] > 0
        at = np.round(pose[:, [X, Y]]).astype(np.int32)
        for a, b in COCO_WHOLEBODY.edges:
            if labelled[a] and labelled[b]:
                colour = COLOURS[PART_OF[b]]
                cv2.line(canvas, tuple(at[a]), tuple(at[b]), colour, LINE_WIDTH, cv2.LINE_AA)
        for i in np.flatnonzero(labelled):
            cv2.circle(canvas, tuple(at[i]), JOINT_RADIUS, COLOURS[PART_OF[int(i)]], -1)
