"""The person box every keypoint format writes: the labelled body points (COCO's 17 body
points and the 6 feet points) padded by :data:`BOX_PADDING`, clipped to the image.

Hands and face do not decide the box: a stray hand or face point would stretch it, and COCO
person boxes are about the body. The padding follows mmpose, which derives a box from
keypoints by scaling their tight box by 1.25 about its centre (``bbox_xyxy2cs(...,
padding=1.25)``): joints sit inside the silhouette, so their tight box misses the head top,
the hands' and feet's extent. A pose with no labelled body point falls back to the padded box
of all its labelled points. Where a person drew the character's box in the workspace (a
keypoint frame's ``box``), that box is the person box instead, clipped to the image likewise;
it never makes an annotation of a pose with no labelled point. ``area`` is the box's w x h
(there are no masks). The workspace's "Box from points" (``static/js/editor/boxes.js``)
applies the same rule to the points on the screen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.projects.skeletons import Box, PoseArray, V, X, Y

BODY_AND_FEET = 23  # COCO-WholeBody points 0..22: body 17, then feet 6
BOX_PADDING = 1.25  # the tight body box scaled about its centre


def person_boxes(
    poses: PoseArray, width: float, height: float, drawn: Sequence[Box | None] = ()
) -> npt.NDArray[np.float64]:
    """(frames, 4) x, y, w, h of each (frames, K, 4) pose's person box; NaN rows where nothing
    is labelled. ``drawn``: per frame, the person-drawn box that wins over the padded one
    (None where there is none; empty: none at all). ``width`` or ``height`` 0 leaves that side
    unclipped."""
    seen = poses[..., V] > 0
    body = seen.copy()
    body[:, BODY_AND_FEET:] = False
    use = np.where(body.any(axis=1)[:, None], body, seen)
    xs, ys = poses[..., X].astype(np.float64), poses[..., Y].astype(np.float64)
    with np.errstate(invalid="ignore"):
        x0, x1 = np.where(use, xs, np.inf).min(axis=1), np.where(use, xs, -np.inf).max(axis=1)
        y0, y1 = np.where(use, ys, np.inf).min(axis=1), np.where(use, ys, -np.inf).max(axis=1)
        grow = (BOX_PADDING - 1) / 2
        dx, dy = (x1 - x0) * grow, (y1 - y0) * grow
        x0, x1, y0, y1 = x0 - dx, x1 + dx, y0 - dy, y1 + dy
    for i, box in enumerate(drawn):
        if box is not None:
            x0[i], y0[i], x1[i], y1[i] = box[0], box[1], box[0] + box[2], box[1] + box[3]
    x0, y0 = np.maximum(x0, 0.0), np.maximum(y0, 0.0)
    if width:
        x1 = np.minimum(x1, float(width))
    if height:
        y1 = np.minimum(y1, float(height))
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    boxes[~use.any(axis=1)] = np.nan
    return boxes


def person_box(
    pose: PoseArray, width: float, height: float, drawn: Box | None = None
) -> Box | None:
    """The person box of one (K, 4) pose (``drawn``, clipped, when a person drew one); None
    when nothing is labelled."""
    box = person_boxes(pose[None], width, height, [drawn])[0]
    if np.isnan(box[0]):
        return None
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
