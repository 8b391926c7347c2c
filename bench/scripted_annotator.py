"""A scripted annotator that corrects clips to their ground truth through the same service
functions the workspace calls, counting every user-level action it takes.

Policies:
  scratch - no drafts, no held runs, no interpolation: every point of every frame is placed;
  drafts  - the model's drafts, corrected frame by frame;
  full    - drafts + "accept all above threshold" + held-run edits + "copy previous drawing"
            + interpolation between keyframes, then frame-by-frame fixes for what is left;
  track   - drafts, the character's held drawings and point tracking from a labelled frame
            through each shot, accepting or fixing frame by frame (bench/track_policy.py).
After the edits, every track is read back from the database and compared with the truth, so
the counted actions provably reach it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import (
    accept_above,
    copy_previous_drawing,
    frame_row,
    interpolate,
    save_frame,
)
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Character,
    CharacterKind,
    KeypointFrame,
    Track,
)
from app.annotations.node_edits import add_character, set_shot_boundaries, set_tags
from app.annotations.opening import open_annotation
from app.annotations.payload import annotation_payload, frames_of
from app.annotations.points import MACHINE_SOURCES, decode_points, decode_with_sources
from app.auth.models import User
from app.clips.models import Clip
from app.pipeline.held import drawing_spans
from app.projects.models import DEFAULT_TAG_VOCABULARY
from app.projects.skeletons import PoseArray, V, X, Y, get_skeleton
from bench.annotator_costs import (
    Actions,
    ClipResult,
    fix_cost,
    target_points,
    tolerance,
    truth_poses,
    wrong,
)
from bench.track_policy import TrackPolicy

POLICIES = ("scratch", "drafts", "full", "track")
# Diagnostic, not a way to work: policy track with each character's held drawings set to the
# generator's truth (written straight into the character), to compare with the detector's.
TRUE_DRAWINGS = "track_true_drawings"
ACCEPT_THRESHOLD = 0.7
GROUP_MOVES = ("full", "track", TRUE_DRAWINGS)  # policies using the workspace's multi-point move
SKELETON_OF_KIND = {"humanoid": "coco_wholebody", "animal": "animal"}


class Annotator:
    """Works one clip through the services as `user` with one policy."""

    def __init__(
        self, session: Session, user: User, clip: Clip, truth: dict[str, Any], policy: str
    ):
        assert policy in (*POLICIES, TRUE_DRAWINGS)
        self.s, self.user, self.clip, self.truth, self.policy = session, user, clip, truth, policy
        self.n = int(truth["frame_count"])
        self.tol = tolerance(clip)
        self.actions = Actions()
        self.parts: dict[int, dict[str, tuple[int, ...]]] = {}
        self.result = ClipResult(
            truth["clip"],
            policy,
            self.n,
            truth["subsets"],
            [c["kind"] for c in truth["characters"]],
            self.actions,
        )

    # ------------------------------------------------------------------ set-up

    def open(self) -> Annotation:
        if self.policy != "scratch":
            return open_annotation(self.s, self.clip, self.user)
        annotation = Annotation(
            clip_id=self.clip.id, kind=AnnotationKind.human, annotator_id=self.user.id
        )
        self.s.add(annotation)
        self.s.flush()
        return annotation

    def poses(self, track_id: int) -> dict[int, PoseArray]:
        return {r.frame_index: decode_points(r.points)[0] for r in frames_of(self.s, track_id)}

    def match_tracks(self, annotation: Annotation) -> list[tuple[dict[str, Any], int]]:
        """Pair truth characters with draft tracks (by median distance), add the rest."""
        drafts = [
            (c, t)
            for c, t in self.s.execute(
                select(Character, Track)
                .join(Track, Track.character_id == Character.id)
                .where(Character.annotation_id == annotation.id)
            ).all()
        ]
        used: set[int] = set()
        pairs = []
        for character in self.truth["characters"]:
            self.actions.character_kind = character["kind"]
            skeleton = SKELETON_OF_KIND.get(character["kind"])
            if character.get("keypoints") is None or skeleton is None:
                add_character(
                    self.s,
                    self.user,
                    annotation.id,
                    character["name"],
                    CharacterKind(character["kind"]),
                    "none",
                )
                self.actions.add("add_character")
                continue
            truth = truth_poses(character, self.n, self.clip.width or 0, self.clip.height or 0)
            best, best_d = None, float("inf")
            for char, track in drafts:
                if track.id in used or char.skeleton != skeleton:
                    continue
                poses = self.poses(track.id)
                d = []
                for f, t in enumerate(truth):
                    p = poses.get(f)
                    both = None if p is None else (p[:, V] > 0) & (t[:, 2] > 0)
                    if p is not None and both is not None and both.any():
                        dist = np.hypot(p[both, X] - t[both, 0], p[both, Y] - t[both, 1])
                        d.append(float(np.median(dist)))
                if d and float(np.median(d)) < best_d:
                    best, best_d = track.id, float(np.median(d))
            box = max((max(b[2], b[3]) for b in character["boxes"] if b), default=100.0)
            if best is not None and best_d < 0.15 * box:
                used.add(best)
                pairs.append((character, best))
                continue
            made = add_character(
                self.s,
                self.user,
                annotation.id,
                character["name"],
                CharacterKind(character["kind"]),
                skeleton,
            )
            self.actions.add("add_character")
            track_id = self.s.scalar(select(Track.id).where(Track.character_id == made.id))
            assert track_id is not None
            pairs.append((character, track_id))
        return pairs

    # ------------------------------------------------------------------ editing

    def save(
        self,
        track_id: int,
        frame: int,
        points: list[list[float]],
        *,
        held: bool,
        accepted: list[int] | None = None,
    ) -> None:
        version = (
            self.s.scalar(
                select(KeypointFrame.version).where(
                    KeypointFrame.track_id == track_id,
                    KeypointFrame.frame_index == frame,
                )
            )
            or 1
        )
        save_frame(
            self.s, self.user, track_id, frame, points, version,
            apply_to_held_run=held, accepted=accepted or (),
        )  # fmt: skip

    def fix_frame(
        self, track_id: int, frame: int, goal: np.ndarray, *, held: bool, accept: bool = False
    ) -> int:
        """Fix one frame to `goal` (the truth, or the truth with some points left for later),
        counting the drags and key presses; with `accept`, the machine's points left right
        are accepted too (one more action). Returns the number of fixing actions."""
        current, sources = self.frame(track_id, frame, len(goal))
        drags, vis, groups = fix_cost(current, goal, self.tol, self.group_parts(track_id))
        points = target_points(current, goal, self.tol)
        guesses = np.isin(sources, MACHINE_SOURCES) & (goal[:, 2] > 0)
        guesses &= ~wrong(current, goal, self.tol)
        accepted = np.flatnonzero(guesses).tolist() if accept else []
        if drags + vis == 0 and not accepted:
            return 0
        self.actions.add("point_drags", drags - 2 * groups)
        self.actions.add("group_moves", 2 * groups)
        self.actions.add("visibility_changes", vis)
        self.actions.add("accept_frame", int(bool(accepted)))
        if held:
            self.actions.add("held_run_edits")  # the edit is the same; its reach is the run
        self.save(track_id, frame, points, held=held, accepted=accepted)
        return drags + vis

    def group_parts(self, track_id: int) -> dict[str, tuple[int, ...]] | None:
        """The parts the policy may move as a group (select the part, drag it)."""
        return self.parts.get(track_id) if self.policy in GROUP_MOVES else None

    def frame(self, track_id: int, frame: int, k: int) -> tuple[PoseArray, np.ndarray]:
        """A frame's pose and each point's source (an unsaved frame: no points, the model's)."""
        row = self.s.scalar(
            select(KeypointFrame.points).where(
                KeypointFrame.track_id == track_id, KeypointFrame.frame_index == frame
            )
        )
        if row is None:
            return np.zeros((k, 4), np.float32), np.zeros(k, np.uint8)
        return decode_with_sources(row)

    def frame_by_frame(self, track_id: int, truth: list[np.ndarray]) -> None:
        for f in range(self.n):
            self.fix_frame(track_id, f, truth[f], held=False)

    def full(self, track_id: int, truth: list[np.ndarray]) -> None:
        if accept_above(self.s, self.user, track_id, ACCEPT_THRESHOLD):
            self.actions.add("accept_above_threshold")
        spans = drawing_spans([tuple(r) for r in self.clip.held_runs or []], self.n)
        i = 0
        while i < len(spans):
            start, end = spans[i]
            poses = self.poses(track_id)
            if not wrong(
                poses.get(start, np.zeros((len(truth[start]), 4), np.float32)),
                truth[start],
                self.tol,
            ).any():
                i += 1
                continue
            if i > 0 and self._copy_previous_fixes(track_id, spans[i - 1][0], start, truth):
                i += 1
                continue
            self.fix_frame(track_id, start, truth[start], held=end - start > 1)
            j = self._interpolation_reach(track_id, spans, i, truth)
            if j is not None:
                b = spans[j][0]
                self.fix_frame(track_id, b, truth[b], held=False)
                self.mark_keyframe(track_id, start)
                self.mark_keyframe(track_id, b)
                interpolate(self.s, self.user, track_id, start, b)
                self.actions.add("interpolations")
                i = j
            else:
                i += 1
        # Whatever is still off: drawing by drawing (held-run edits), then any single frame
        # whose held run the detector got wrong.
        for start, end in spans:
            self.fix_frame(track_id, start, truth[start], held=end - start > 1)
        self.frame_by_frame(track_id, truth)

    def mark_keyframe(self, track_id: int, frame: int) -> None:
        row = frame_row(self.s, self.s.get_one(Track, track_id), frame, self.clip)
        if not row.is_keyframe:
            pose, _ = decode_points(row.points)
            points = [[float(p[X]), float(p[Y]), int(p[V])] for p in pose]
            save_frame(self.s, self.user, track_id, frame, points, row.version, keyframe=True)
            self.actions.add("keyframe_marks")

    def _copy_previous_fixes(
        self, track_id: int, prev: int, start: int, truth: list[np.ndarray]
    ) -> bool:
        """Use "copy previous drawing" when the previous drawing is right and the same pose."""
        poses = self.poses(track_id)
        before = poses.get(prev)
        if before is None or wrong(before, truth[prev], self.tol).any():
            return False
        if wrong(before, truth[start], self.tol).any():
            return False
        version = frame_row(self.s, self.s.get_one(Track, track_id), start, self.clip).version
        copy_previous_drawing(self.s, self.user, track_id, start, version)
        self.actions.add("copy_previous")
        return True

    def _interpolation_reach(
        self, track_id: int, spans: list[tuple[int, int]], i: int, truth: list[np.ndarray]
    ) -> int | None:
        """The later drawing j where fixing j and interpolating from drawing i saves the most
        actions: point instances it puts right, minus those it breaks, minus the cost of
        fixing j and of the three clicks (two keyframes, interpolate). None if nothing pays."""
        a = spans[i][0]
        poses = self.poses(track_id)
        human = {r.frame_index: decode_points(r.points)[1] for r in frames_of(self.s, track_id)}
        empty = np.zeros((len(truth[a]), 4), np.float32)
        best, best_gain = None, 0.0
        for j in range(i + 2, min(len(spans), i + 40)):
            b = spans[j][0]
            ta, tb = truth[a], truth[b]
            both = (ta[:, 2] > 0) & (tb[:, 2] > 0)
            gain = -3.0 - sum(
                fix_cost(poses.get(b, empty), tb, self.tol, self.parts.get(track_id))[:2]
            )
            for f in range(a + 1, b):
                before = poses.get(f, empty)
                after = before.copy()
                fill = both & ~human.get(f, np.zeros(len(ta), bool))
                held = next((hs for hs, he in self.clip.held_runs or [] if hs <= f < he), f)
                t = (max(held, a) - a) / (b - a)
                after[fill, X] = ta[fill, 0] + t * (tb[fill, 0] - ta[fill, 0])
                after[fill, Y] = ta[fill, 1] + t * (tb[fill, 1] - ta[fill, 1])
                after[fill, V] = np.where(t < 0.5, ta[fill, 2], tb[fill, 2])
                was, now = wrong(before, truth[f], self.tol), wrong(after, truth[f], self.tol)
                gain += float((was & ~now).sum() - (~was & now).sum())
            if gain > best_gain:
                best, best_gain = j, gain
        return best

    # ------------------------------------------------------------------ other levels

    def shots(self, annotation: Annotation) -> None:
        current = [s["start"] for s in annotation_payload(self.s, annotation)["shots"]] or [0]
        target = [s for s, _ in self.truth["shots"]]
        unmatched = set(target)
        moves = 0
        for c in current:
            near = [t for t in unmatched if abs(t - c) <= 3]
            if near:
                t = min(near, key=lambda t: abs(t - c))
                unmatched.discard(t)
                moves += int(t != c)
            elif c != 0:
                moves += 1  # merge away a false cut
        moves += len(unmatched - {0})
        self.actions.add("shot_boundary_edits", moves)
        set_shot_boundaries(self.s, self.user, annotation.id, target, annotation.version)

    def tags(self, annotation: Annotation) -> None:
        wanted = {k: v for k, v in self.truth["tags"].items() if k in DEFAULT_TAG_VOCABULARY}
        clicks = sum(annotation.tags.get(k) != v for k, v in wanted.items())
        self.actions.add("tag_clicks", clicks)
        set_tags(
            self.s, self.user, annotation.id, wanted, annotation.version, DEFAULT_TAG_VOCABULARY
        )

    # ------------------------------------------------------------------ run and check

    def run(self) -> ClipResult:
        annotation = self.open()
        self.shots(annotation)  # first: tracking stops at the shot cuts
        pairs = self.match_tracks(annotation)
        for character, track_id in pairs:
            self.actions.character_kind = character["kind"]
            truth = truth_poses(character, self.n, self.clip.width or 0, self.clip.height or 0)
            self.parts[track_id] = get_skeleton(SKELETON_OF_KIND[character["kind"]]).parts
            if self.policy != "scratch":
                self._count_model_points(track_id, truth)
            if self.policy == "full":
                self.full(track_id, truth)
            elif self.policy in ("track", TRUE_DRAWINGS):
                if self.policy == TRUE_DRAWINGS:
                    self._true_drawings(track_id, character)
                TrackPolicy(self, track_id, truth, character).run()
            else:
                self.frame_by_frame(track_id, truth)
        self.actions.character_kind = None
        self.tags(annotation)
        self._check(pairs)
        return self.result

    def _true_drawings(self, track_id: int, character: dict[str, Any]) -> None:
        made = self.s.get_one(Character, self.s.get_one(Track, track_id).character_id)
        made.drawing_runs, made.timing = character["drawing_runs"], character["timing"]
        self.s.flush()

    def _count_model_points(self, track_id: int, truth: list[np.ndarray]) -> None:
        for f, pose in self.poses(track_id).items():
            drafted = pose[:, V] > 0
            self.result.model_points += int(drafted.sum())
            self.result.model_points_kept += int((drafted & ~wrong(pose, truth[f], self.tol)).sum())

    def _check(self, pairs: list[tuple[dict[str, Any], int]]) -> None:
        """Read every track back: points off the truth, and labelled points still a guess."""
        for character, track_id in pairs:
            truth = truth_poses(character, self.n, self.clip.width or 0, self.clip.height or 0)
            for f, t in enumerate(truth):
                pose, sources = self.frame(track_id, f, len(t))
                labelled = t[:, 2] > 0
                self.result.wrong_points += int(wrong(pose, t, self.tol).sum())
                self.result.unaccepted_points += int(
                    (labelled & np.isin(sources, MACHINE_SOURCES)).sum()
                )
                if labelled.any():
                    err = np.hypot(
                        pose[labelled, X] - t[labelled, 0], pose[labelled, Y] - t[labelled, 1]
                    )
                    self.result.max_error_px = max(self.result.max_error_px, float(err.max()))


def annotate(
    session: Session, user: User, clip: Clip, truth: dict[str, Any], policy: str
) -> ClipResult:
    """Correct one clip to its truth with one policy; see the module docstring."""
    return Annotator(session, user, clip, truth, policy).run()
