"""A character's held drawings as edits see them: which frames show one drawing, and where an
edit made on one of them lands on the others.

A held drawing may slide, or the camera pan or zoom over it, so its frames place it
differently (:mod:`app.media.drawings`): an edit carried to another frame of the run moves by
that frame's move, so a dragged point moves by the same displacement, in the drawing's own
coordinates, on every frame of the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.annotations.models import Character, Track
from app.annotations.points import BoolArray
from app.clips.models import Clip
from app.media.drawings import IDENTITY, DrawingRun, Move, carry, run_at, runs_from_json
from app.projects.skeletons import V_UNLABELLED, PoseArray, V, X, Y


def character_runs(character: Character, clip: Clip) -> list[DrawingRun]:
    """The character's held drawings once they were looked for in its own region (its timing
    is set then, even when it holds none), else the clip's whole-frame held runs, which do not
    move (a character added by a person, or one the model did not find)."""
    if character.drawing_runs or character.timing is not None:
        return runs_from_json(character.drawing_runs)
    return [DrawingRun.still(int(s), int(e)) for s, e in clip.held_runs or [] if e - s >= 2]


def track_runs(session: Session, track: Track, clip: Clip) -> list[DrawingRun]:
    """The held drawings of the track's character (see :func:`character_runs`)."""
    return character_runs(session.get_one(Character, track.character_id), clip)


def held_run_of(session: Session, track: Track, clip: Clip, frame: int) -> DrawingRun | None:
    """The held drawing ``frame`` shows for the track's character; None: a drawing of its own."""
    return run_at(track_runs(session, track, clip), frame)


def move_in(run: DrawingRun | None, frame: int) -> Move:
    """Where ``run`` places its drawing on ``frame`` (a frame of its own drawing: as it is)."""
    return IDENTITY if run is None else run.move_at(frame)


def inside_frame(points: npt.NDArray[np.floating[Any]], clip: Clip) -> BoolArray:
    """Points (rows starting x, y) that lie on the clip's frame, half a pixel of slack."""
    width, height = clip.width or 0, clip.height or 0
    x, y = points[:, X], points[:, Y]
    with np.errstate(invalid="ignore"):  # NaN compares false
        return (x >= -0.5) & (x <= width + 0.5) & (y >= -0.5) & (y <= height + 0.5)


def carried_pose(
    pose: PoseArray, placed: BoolArray, onto: PoseArray, source: Move, target: Move, clip: Clip
) -> PoseArray:
    """``pose``, set on a frame of a held drawing placed by ``source``, as it stands on the
    frame placed by ``target`` whose own pose is ``onto``: the ``placed`` points are carried by
    the drawing's move, and one carried off the frame is no longer labelled there (a person
    cannot label a point outside the frame); the others keep ``onto``'s position."""
    out = pose.copy()
    out[~placed, :2] = onto[~placed, :2]
    if source != target:
        out[placed, :2] = carry(pose[placed, :2], source, target)
        out[placed & (out[:, V] > 0) & ~inside_frame(out, clip), V] = V_UNLABELLED
    return out


def carried_box(
    box: list[float] | None, source: Move, target: Move, clip: Clip
) -> list[float] | None:
    """A character box ``[x, y, w, h]`` carried like the points, cut to the frame (None when
    nothing of it is left on the frame)."""
    if box is None or source == target:
        return box
    x, y, w, h = box
    corners = carry(np.array([[x, y], [x + w, y + h]], dtype=np.float32), source, target)
    width, height = clip.width or 0, clip.height or 0
    x0, y0 = max(float(corners[0, 0]), 0.0), max(float(corners[0, 1]), 0.0)
    x1, y1 = min(float(corners[1, 0]), float(width)), min(float(corners[1, 1]), float(height))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
