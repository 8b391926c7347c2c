"""Policy track of the scripted annotator: label one frame of a shot, press Track, then walk
the shot frame by frame, accepting what the tracker got right and fixing what it did not.

For each shot of a character: fix its first frame to the truth (drags, visibility keys) and
accept the rest (one action), press Track forward (one action). Then on every later frame of
the shot: drag what is off, press accept for the rest of the frame (one action); a frame that
starts one of the character's held drawings is edited as the whole run when that puts every
frame of the run right. After a fix, Track again from the fixed frame (one action), so later
frames start from the corrected points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from app.annotations.held_drawings import carried_pose, track_runs
from app.annotations.keypoint_edits import frame_row
from app.annotations.models import Track
from app.annotations.points import SRC_TRACKED
from app.annotations.tracking import Direction, track_from
from app.media.drawings import run_at
from app.projects.skeletons import V, X, Y
from bench.annotator_costs import target_points, wrong

if TYPE_CHECKING:
    from bench.scripted_annotator import Annotator


class TrackPolicy:
    """Works one character's track through every shot with tracking."""

    def __init__(
        self,
        annotator: Annotator,
        track_id: int,
        truth: list[np.ndarray],
        character: dict[str, Any],
    ) -> None:
        self.a = annotator
        self.track_id = track_id
        self.truth = truth
        self.kind: str = character["kind"]
        self.boxes: list[list[float] | None] = character["boxes"]
        self.runs = track_runs(annotator.s, annotator.s.get_one(Track, track_id), annotator.clip)

    def run(self) -> None:
        for start, end in self.a.truth["shots"]:
            self.shot(int(start), int(end))

    def shot(self, start: int, end: int) -> None:
        for f in range(start, end):
            if f > start:
                self.look(f)
            truth = self.truth[f]
            reach = self.held_reach(f)
            fixes = self.a.fix_frame(self.track_id, f, truth, held=reach > f, accept=True)
            if (fixes or f == start) and reach + 1 < end and (truth[:, 2] > 0).any():
                self.track(f)

    def held_reach(self, frame: int) -> int:
        """The last frame a held-run edit at `frame` puts right, or `frame` itself when the
        frame does not start a held drawing or the edit, carried as the service carries it,
        would leave a frame of the drawing wrong."""
        run = run_at(self.runs, frame)
        if run is None or run.start != frame:
            return frame
        k = len(self.truth[frame])
        pose, _ = self.a.frame(self.track_id, frame, k)
        edited = np.zeros((k, 4), np.float32)
        edited[:, :3] = target_points(pose, self.truth[frame], self.a.tol)
        for other in range(run.start + 1, run.end):
            onto, _ = self.a.frame(self.track_id, other, k)
            moved = carried_pose(
                edited, edited[:, V] > 0, onto, run.move_at(frame), run.move_at(other), self.a.clip
            )
            if wrong(moved, self.truth[other], self.a.tol).any():
                return frame
        return run.end - 1

    def track(self, frame: int, direction: Direction = "forward") -> None:
        """Press Track on `frame` (the workspace's T, or Shift+T backward)."""
        track = self.a.s.get_one(Track, self.track_id)
        version = frame_row(self.a.s, track, frame, self.a.clip).version
        track_from(self.a.s, self.a.user, self.track_id, frame, version, direction)
        self.a.actions.add("track_presses")

    def look(self, frame: int) -> None:
        """Record how far the tracked points the annotator sees on `frame` are from the truth."""
        truth = self.truth[frame]
        pose, sources = self.a.frame(self.track_id, frame, len(truth))
        seen = (sources == SRC_TRACKED) & (truth[:, 2] > 0) & (pose[:, V] > 0)
        if not seen.any():
            return
        box = self.boxes[frame]
        diagonal = float(np.hypot(box[2], box[3])) if box else 0.0
        if diagonal <= 0:
            return
        off = np.hypot(pose[seen, X] - truth[seen, 0], pose[seen, Y] - truth[seen, 1])
        result = self.a.result
        result.tracked_errors.setdefault(self.kind, []).extend((100 * off / diagonal).tolist())
        result.tracked_points += int(seen.sum())
        result.tracked_points_kept += int((seen & ~wrong(pose, truth, self.a.tol)).sum())
