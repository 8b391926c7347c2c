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

from app.annotations.models import Character, Track
from app.annotations.points import SRC_TRACKED
from app.media.drawings import DrawingRun, Move, carry, run_at, runs_from_json
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
        self.runs = self._drawing_runs()

    def _drawing_runs(self) -> list[DrawingRun]:
        """The held drawings an edit applies to: the character's own, else the clip's
        whole-frame holds."""
        track = self.a.s.get_one(Track, self.track_id)
        character = self.a.s.get_one(Character, track.character_id)
        if character.drawing_runs:
            return runs_from_json(character.drawing_runs)
        return [DrawingRun.still(int(s), int(e)) for s, e in self.a.clip.held_runs or []]

    def run(self) -> None:
        for start, end in self.a.truth["shots"]:
            self.shot(int(start), int(end))

    def shot(self, start: int, end: int) -> None:
        a, truth = self.a, self.truth
        a.fix_frame(self.track_id, start, truth[start], held=False, accept=True)
        if end - start > 1:
            self.track(start)
        for f in range(start + 1, end):
            self.look(f)
            reach = self.held_reach(f)
            fixes = a.fix_frame(self.track_id, f, truth[f], held=reach > f, accept=True)
            if fixes and reach + 1 < end:
                self.track(reach)

    def held_reach(self, frame: int) -> int:
        """The last frame a held-run edit at `frame` puts right, or `frame` itself when the
        frame does not start a held drawing or the edit would leave a frame of it wrong."""
        run = run_at(self.runs, frame)
        if run is None or run.start != frame:
            return frame
        pose, _ = self.a.frame(self.track_id, frame, len(self.truth[frame]))
        target = np.asarray(target_points(pose, self.truth[frame], self.a.tol), np.float32)
        for other in range(run.start + 1, run.end):
            carried = np.zeros((len(target), 4), np.float32)
            carried[:, :2] = carry(target[:, :2], run.move_at(frame), run.move_at(other))
            carried[:, V] = target[:, 2]
            if wrong(carried, self.truth[other], self.a.tol).any():
                return frame
        return run.end - 1

    def track(self, frame: int) -> None:
        """Press Track forward from `frame`."""
        self.a.actions.add("track_presses")
        _prototype_track(self.a, self.track_id, frame, self.runs)

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


def _relative(run: DrawingRun | None, frame: int) -> Move | None:
    """The move from frame - 1 to frame when both show the same drawing."""
    if run is None or frame - 1 not in run or frame not in run:
        return None
    s0, dx0, dy0 = run.move_at(frame - 1)
    s1, dx1, dy1 = run.move_at(frame)
    k = s1 / s0
    return (k, dx1 - k * dx0, dy1 - k * dy0)


def _prototype_track(a: Annotator, track_id: int, frame: int, runs: list[DrawingRun]) -> None:
    """PROTOTYPE until app.annotations.tracking lands: track to the end of the shot."""
    from sqlalchemy import select

    from app.annotations.keypoint_edits import frame_row, track_context, write_pose
    from app.annotations.models import Shot
    from app.annotations.points import by_person, decode_with_sources
    from app.clips.paths import clip_media_dir
    from app.media.framecache import open_frame_cache
    from app.media.pointtrack import track_points

    track, annotation, clip = track_context(a.s, track_id)
    end = (
        a.s.scalar(
            select(Shot.end_frame).where(
                Shot.annotation_id == annotation.id,
                Shot.start_frame <= frame,
                Shot.end_frame > frame,
            )
        )
        or a.n
    )
    if end - frame < 2:
        return
    cache = open_frame_cache(clip_media_dir(clip) / "frames")
    scale = cache.info.width / cache.info.source_width
    images = [cache.image(f) for f in range(frame, end)]
    key, _ = decode_with_sources(frame_row(a.s, track, frame, clip).points)
    moves = [None] + [_relative(run_at(runs, f), f) for f in range(frame + 1, end)]
    result = track_points(images, key[:, :2], key[:, V] > 0, moves=moves, scale=scale)
    for i, f in enumerate(range(frame + 1, end), start=1):
        row = frame_row(a.s, track, f, clip)
        pose, sources = decode_with_sources(row.points)
        take = result.ok[i] & ~by_person(sources)
        if not take.any():
            continue
        pose[take, :2] = result.xy[i, take]
        pose[take, V] = key[take, V]
        pose[take, 3] = result.confidence[i, take]
        sources[take] = SRC_TRACKED
        write_pose(a.s, a.user, annotation, row, pose, sources, "track", None, exact=True)
