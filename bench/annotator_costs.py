"""What the scripted annotator counts and compares: actions, a clip's result, the truth as a
person can label it, and what it costs to turn a pose into the truth.

Shared by every policy of bench/scripted_annotator.py and bench/track_policy.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.clips.models import Clip
from app.projects.skeletons import PoseArray, V, X, Y


@dataclass
class Actions:
    """User-level actions by name, and how many went to characters of each kind."""

    counts: Counter[str] = field(default_factory=Counter)
    by_character_kind: Counter[str] = field(default_factory=Counter)
    character_kind: str | None = None  # the kind of the character being worked on

    def add(self, action: str, n: int = 1) -> None:
        if n:
            self.counts[action] += n
            if self.character_kind is not None:
                self.by_character_kind[self.character_kind] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ClipResult:
    clip: str
    policy: str
    frames: int
    subsets: list[str]
    kinds: list[str]
    actions: Actions
    model_points: int = 0
    model_points_kept: int = 0
    max_error_px: float = 0.0
    wrong_points: int = 0
    unaccepted_points: int = 0  # labelled in the truth, still a machine's guess at the end
    tracked_points: int = 0  # tracked points the annotator looked at
    tracked_points_kept: int = 0  # of those, right as tracked
    # Error of each tracked point the annotator looked at, in % of the character's box diagonal.
    tracked_errors: dict[str, list[float]] = field(default_factory=dict)
    # Policy track: actions per step of its work (see bench/track_policy.py).
    track_steps: Counter[str] = field(default_factory=Counter)


def tolerance(clip: Clip) -> float:
    """A point is right when within max(3 px, 1 % of the frame diagonal) of the truth."""
    return max(3.0, 0.01 * float(np.hypot(clip.width or 0, clip.height or 0)))


def truth_poses(character: dict[str, Any], n: int, width: float, height: float) -> list[np.ndarray]:
    """The truth per frame; labelled points outside the picture are clamped to its border,
    which is where a person can put them (the editor keeps points inside the frame)."""
    poses = []
    for f in range(n):
        pose = np.asarray(character["keypoints"][f], dtype=np.float32).copy()
        pose[:, 0] = np.clip(pose[:, 0], 0, width)
        pose[:, 1] = np.clip(pose[:, 1], 0, height)
        poses.append(pose)
    return poses


def wrong(current: PoseArray, truth: np.ndarray, tol: float) -> np.ndarray:
    """Points that differ from the truth in visibility, or in place where labelled."""
    off = np.hypot(current[:, X] - truth[:, 0], current[:, Y] - truth[:, 1]) > tol
    labelled = truth[:, 2] > 0
    return (current[:, V] != truth[:, 2]) | (labelled & off)


def _rigid_fix(current: PoseArray, truth: np.ndarray, idx: np.ndarray, tol: float) -> bool:
    """True when one drag of the selected points `idx` (a common shift) puts all of them
    within tolerance of the truth."""
    if idx.size == 0:
        return False
    shift = np.median(truth[idx, :2] - current[idx, :2], axis=0)
    moved = current[idx, :2] + shift
    return bool((np.hypot(*(moved - truth[idx, :2]).T) <= tol).all())


def fix_cost(
    current: PoseArray,
    truth: np.ndarray,
    tol: float,
    parts: dict[str, tuple[int, ...]] | None = None,
) -> tuple[int, int, int]:
    """(drags and placements, visibility key presses, group moves) to turn `current` into
    `truth`. A group move (select the points of a part, drag them together) costs 2 actions
    and replaces the single drags of that part when one common shift fixes it."""
    labelled = truth[:, 2] > 0
    present = current[:, V] > 0
    off = np.hypot(current[:, X] - truth[:, 0], current[:, Y] - truth[:, 1]) > tol
    misplaced = labelled & present & off
    placements = int((labelled & ~present).sum())
    vis = int((~labelled & present).sum())
    placed_v = np.where(present, current[:, V], 2)
    vis += int((labelled & (placed_v != truth[:, 2])).sum())
    groups = 0
    drags = int(misplaced.sum())
    if parts and drags > 2:
        together = labelled & present
        if _rigid_fix(current, truth, np.flatnonzero(together), tol):
            return placements + 2, vis, 1
        drags = 0
        for idx in parts.values():
            part = np.asarray(idx)
            bad = part[misplaced[part]]
            if bad.size > 2 and _rigid_fix(current, truth, part[together[part]], tol):
                drags += 2
                groups += 1
            else:
                drags += bad.size
    return placements + drags, vis, groups


def target_points(current: PoseArray, truth: np.ndarray, tol: float) -> list[list[float]]:
    """The points a person leaves after fixing: truth where wrong, untouched where right."""
    out = []
    for c, t in zip(current, truth, strict=True):
        if t[2] == 0:
            out.append([float(c[X]), float(c[Y]), 0])
        elif c[V] == 0 or np.hypot(c[X] - t[0], c[Y] - t[1]) > tol:
            out.append([float(t[0]), float(t[1]), int(t[2])])
        else:
            out.append([float(c[X]), float(c[Y]), int(t[2])])
    return out
