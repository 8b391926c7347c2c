"""Policy track of the scripted annotator: label one frame of a shot, press Track, then walk
the shot frame by frame, fixing what the tracker got wrong and accepting the rest a span at a
time.

For each shot of a character, two passes:

1. Fix the shot's first frame to the truth (drags, visibility keys) and press Track forward
   (one action: Track accepts the frame it tracks from and makes it a keyframe). Walk the
   later frames: a frame that is right needs no action; on a frame with something off, drag
   it (a frame that starts one of the character's held drawings is edited as the whole run
   when that puts every frame of the run right). When the fixed points are wrong on the next
   frame too, Track again from that frame, first accepting the span walked since the last
   keyframe (Shift+A, one action, where it holds a guess). At the shot's end, accept the
   last span. Points nobody sees (off the frame, hidden) are carried by the tracker with the
   followed ones, as hidden guesses fixed or accepted like the rest; where it could not carry
   them (no followed neighbour) they are left for the second pass.
2. Those points, by interpolation between frames where they are placed (mark both ends as
   keyframes, interpolate: the accepted points are kept) where that saves actions, and frame
   by frame where it does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from app.annotations.held_drawings import carried_pose, move_in, track_runs
from app.annotations.keypoint_edits import (
    changed_points,
    copy_previous_drawing,
    frame_row,
    interpolate,
)
from app.annotations.models import Track
from app.annotations.points import MACHINE_SOURCES, SRC_TRACKED, by_person
from app.annotations.tracking import accept_span, track_from
from app.media.drawings import run_at
from app.projects.skeletons import V, X, Y
from bench.annotator_costs import fix_cost, target_points, wrong

if TYPE_CHECKING:
    from bench.scripted_annotator import Annotator

MAX_SPAN = 40  # frames an interpolation may span (the farthest a person looks ahead)
FIRST_FRAME = "a shot's first frame: fixed, Track pressed (accepting it)"
TRACKING = "the shot's other frames, tracked: fixes, span accepts, Track again"
UNSEEN = "points nobody sees (off the frame, hidden): interpolation or by hand"


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
        with self.step(FIRST_FRAME):
            if start > 0:
                self.copy_previous_if_it_pays(start)
            reach = self.held_reach(start, self.truth[start])
            tracks = reach + 1 < end and bool((self.truth[start][:, 2] > 0).any())
            self.fix(start, self.truth[start], accept=not tracks)
            if tracks:
                self.track(start)
        with self.step(TRACKING):
            for f in range(start + 1, end):
                goal = self.goal(f)
                self.look(f)
                fixed, reach = self.fix(f, goal, accept=False)
                if reach + 1 < end and self.helps(fixed, reach + 1):
                    self.accept_span(start, f - 1)
                    self.track(f)
            self.accept_span(start, end - 1)
        with self.step(UNSEEN):
            self.fill_unseen(start, end)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Count the actions taken inside as step `name` of the policy."""
        before = self.a.actions.total
        yield
        self.a.result.track_steps[name] += self.a.actions.total - before

    def fix(self, frame: int, goal: np.ndarray, accept: bool = True) -> tuple[np.ndarray, int]:
        """Fix `frame` to `goal` (and with `accept`, accept the rest), as a held-run edit where
        that puts the whole run right; returns the points it changed and the last frame the
        edit reached."""
        k = len(goal)
        reach = self.held_reach(frame, goal)
        before, _ = self.a.frame(self.track_id, frame, k)
        self.a.fix_frame(self.track_id, frame, goal, held=reach > frame, accept=accept)
        after, _ = self.a.frame(self.track_id, frame, k)
        return changed_points(before, after), reach

    def helps(self, fixed: np.ndarray, frame: int) -> bool:
        """Tracking again pays when points just fixed are wrong on the next frame too."""
        pose, _ = self.a.frame(self.track_id, frame, len(fixed))
        return bool((fixed & wrong(pose, self.goal(frame), self.a.tol)).any())

    def copy_previous_if_it_pays(self, start: int) -> None:
        """After a cut, "copy previous drawing" when fixing the copy costs less than fixing
        what the shot's first frame holds."""
        k, tol, parts = len(self.truth[start]), self.a.tol, self.a.group_parts(self.track_id)
        here, _ = self.a.frame(self.track_id, start, k)
        previous, _ = self.a.frame(self.track_id, start - 1, k)
        direct = sum(fix_cost(here, self.truth[start], tol, parts)[:2])
        if 1 + sum(fix_cost(previous, self.truth[start], tol, parts)[:2]) >= direct:
            return
        track = self.a.s.get_one(Track, self.track_id)
        version = frame_row(self.a.s, track, start, self.a.clip).version
        copy_previous_drawing(self.a.s, self.a.user, self.track_id, start, version)
        self.a.actions.add("copy_previous")

    def goal(self, frame: int) -> np.ndarray:
        """The truth, less the points nobody sees that are missing here (pass 2 places them)."""
        truth = self.truth[frame]
        pose, _ = self.a.frame(self.track_id, frame, len(truth))
        later = (truth[:, 2] == 1) & (pose[:, V] == 0)
        goal = truth.copy()
        goal[later] = pose[later, :3]
        return goal

    def fill_unseen(self, start: int, end: int) -> None:
        """Pass 2: from a frame that is right, interpolate to the later frame where that saves
        the most actions (fixing that frame first); without one, fix the next frame."""
        a = start
        while a < end - 1:
            b = self.partner(a, end)
            if b is None:
                a += 1
                self.fix(a, self.truth[a])
                continue
            self.a.fix_frame(self.track_id, b, self.truth[b], held=False, accept=True)
            self.a.mark_keyframe(self.track_id, a)
            self.a.mark_keyframe(self.track_id, b)
            interpolate(self.a.s, self.a.user, self.track_id, a, b)
            self.a.actions.add("interpolations")
            a = b
        for f in range(start, end):  # what interpolation left off
            self.fix(f, self.truth[f])

    def partner(self, a: int, end: int) -> int | None:
        """The frame b > a + 1 of the shot where fixing b and interpolating from a saves the
        most actions (what it puts right, less what it breaks, less fixing b and the clicks),
        as :func:`app.annotations.keypoint_edits.interpolate` would fill the frames between."""
        k, tol, parts = len(self.truth[a]), self.a.tol, self.a.group_parts(self.track_id)
        last = min(end, a + MAX_SPAN)
        frames = {f: self.a.frame(self.track_id, f, k) for f in range(a, last)}
        keyed = {f for f in frames if self._is_keyframe(f)}
        first = frames[a][0]
        best, best_gain = None, 0
        for b in range(a + 2, last):
            pose_b, _ = frames[b]
            goal_b = np.zeros((k, 4), np.float32)
            goal_b[:, :3] = target_points(pose_b, self.truth[b], tol)
            both = (first[:, V] > 0) & (goal_b[:, V] > 0)
            gain = -sum(fix_cost(pose_b, self.truth[b], tol, parts)[:2])
            gain -= 1 + (a not in keyed) + (b not in keyed)
            for f in range(a + 1, b):
                before, sources = frames[f]
                after = self._interpolated(
                    first, goal_b, a, b, f, before, both & ~by_person(sources)
                )
                gain += sum(fix_cost(before, self.truth[f], tol, parts)[:2])
                gain -= sum(fix_cost(after, self.truth[f], tol, parts)[:2])
            if gain > best_gain:
                best, best_gain = b, gain
        return best

    def _interpolated(
        self,
        first: np.ndarray,
        last: np.ndarray,
        a: int,
        b: int,
        f: int,
        pose: np.ndarray,
        fill: np.ndarray,
    ) -> np.ndarray:
        """Frame f's pose after interpolating from a to b (the service's rule: a held drawing
        takes the value at its first frame, carried by its move)."""
        run = run_at(self.runs, f)
        drawing = max(run.start, a) if run else f
        t = (drawing - a) / (b - a)
        out = pose.copy()
        out[fill, X] = first[fill, X] + t * (last[fill, X] - first[fill, X])
        out[fill, Y] = first[fill, Y] + t * (last[fill, Y] - first[fill, Y])
        out[fill, V] = np.where(t < 0.5, first[fill, V], last[fill, V])
        return carried_pose(out, fill, pose, move_in(run, drawing), move_in(run, f), self.a.clip)

    def _is_keyframe(self, frame: int) -> bool:
        track = self.a.s.get_one(Track, self.track_id)
        return frame_row(self.a.s, track, frame, self.a.clip).is_keyframe

    def held_reach(self, frame: int, goal: np.ndarray) -> int:
        """The last frame a held-run edit at `frame` puts right (to `goal` there, and to the
        same rule on the run's other frames), or `frame` itself when the frame does not start
        a held drawing or the edit, carried as the service carries it, would leave a frame of
        the drawing wrong."""
        run = run_at(self.runs, frame)
        if run is None or run.start != frame:
            return frame
        k = len(self.truth[frame])
        pose, _ = self.a.frame(self.track_id, frame, k)
        edited = np.zeros((k, 4), np.float32)
        edited[:, :3] = target_points(pose, goal, self.a.tol)
        for other in range(run.start + 1, run.end):
            onto, _ = self.a.frame(self.track_id, other, k)
            moved = carried_pose(
                edited, edited[:, V] > 0, onto, run.move_at(frame), run.move_at(other), self.a.clip
            )
            if wrong(moved, self.goal(other), self.a.tol).any():
                return frame
        return run.end - 1

    def accept_span(self, start: int, frame: int) -> None:
        """Shift+A on `frame`: accept the guesses shown since the last keyframe of the shot
        (which starts at `start`), where the span holds one (a person sees faded points)."""
        k = len(self.truth[frame])
        key = next((f for f in range(frame - 1, start - 1, -1) if self._is_keyframe(f)), None)
        if key is None:
            return
        for f in range(key + 1, frame + 1):
            pose, sources = self.a.frame(self.track_id, f, k)
            if (np.isin(sources, MACHINE_SOURCES) & (pose[:, V] > 0)).any():
                accept_span(self.a.s, self.a.user, self.track_id, frame)
                self.a.actions.add("span_accepts")
                return

    def track(self, frame: int) -> None:
        """Press Track forward on `frame` (the workspace's T: it accepts the frame)."""
        track = self.a.s.get_one(Track, self.track_id)
        version = frame_row(self.a.s, track, frame, self.a.clip).version
        track_from(self.a.s, self.a.user, self.track_id, frame, version, "forward")
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
