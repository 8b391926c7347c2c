"""Temporal sanity checks on one track: flag frames whose keypoints look wrong.

Only visible points (v=2) are compared: hidden points are guesses or clipped to the
image border and would raise false alarms. Distances are relative to the body scale, the
diagonal of the visible points' box (median over the frames compared), so the checks work
the same for a close-up and a wide shot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.projects.skeletons import V_VISIBLE, PoseArray, Skeleton, V, as_pose


@dataclass(frozen=True)
class SanityThresholds:
    # jitter: a point moves more than this (x body scale) away from both neighbouring
    # frames, while the neighbours are closer to each other than `jitter_return` x that move
    jitter: float = 0.1
    jitter_return: float = 0.5
    # bone: length changes by more than this fraction between consecutive frames; bones
    # shorter than `min_bone` x body scale use that length as the base (small bones are noisy)
    bone_change: float = 0.5
    min_bone: float = 0.05
    # swap: crossing over (left_t -> right_t-1, right_t -> left_t-1) is this much shorter
    # than staying; the two sides must be at least `min_separation` x body scale apart
    swap_ratio: float = 0.5
    min_separation: float = 0.05


def _scale(pose: PoseArray) -> float:
    pts = pose[pose[:, V] == V_VISIBLE, :2]
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*(pts.max(axis=0) - pts.min(axis=0))))


def _local_scale(scales: Sequence[float], *frames: int) -> float:
    values = [scales[f] for f in frames if scales[f] > 0]
    return float(np.median(values)) if values else 0.0


def _dist(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.hypot(*(a[:2] - b[:2])))


def _jitter(poses: list[PoseArray], scales: list[float], th: SanityThresholds) -> list[set[int]]:
    """Per frame, the points that spike away and come back."""
    out: list[set[int]] = [set() for _ in poses]
    for t in range(1, len(poses) - 1):
        prev, cur, nxt = poses[t - 1], poses[t], poses[t + 1]
        scale = _local_scale(scales, t - 1, t, t + 1)
        if scale == 0:
            continue
        both = (prev[:, V] == V_VISIBLE) & (cur[:, V] == V_VISIBLE) & (nxt[:, V] == V_VISIBLE)
        for i in np.flatnonzero(both):
            spike = min(_dist(cur[i], prev[i]), _dist(cur[i], nxt[i]))
            if spike > th.jitter * scale and _dist(prev[i], nxt[i]) < th.jitter_return * spike:
                out[t].add(int(i))
    return out


def _swapped_pairs(
    prev: PoseArray, cur: PoseArray, skeleton: Skeleton, scale: float, th: SanityThresholds
) -> list[tuple[int, int]]:
    swapped = []
    for a, b in skeleton.symmetric_pairs:
        if not all(p[i, V] == V_VISIBLE for p in (prev, cur) for i in (a, b)):
            continue
        if min(_dist(prev[a], prev[b]), _dist(cur[a], cur[b])) < th.min_separation * scale:
            continue
        stay = _dist(cur[a], prev[a]) + _dist(cur[b], prev[b])
        cross = _dist(cur[a], prev[b]) + _dist(cur[b], prev[a])
        if cross < th.swap_ratio * stay:
            swapped.append((a, b))
    return swapped


def _swap_reasons(swapped: list[tuple[int, int]], skeleton: Skeleton) -> list[str]:
    """Name whole parts when most pairs between two mirrored parts swapped (left_hand /
    right_hand), single points otherwise (left_wrist / right_wrist)."""
    part_of = {i: p for p, idx in skeleton.parts.items() for i in idx}
    between: dict[tuple[str, str], int] = {}
    for a, b in skeleton.symmetric_pairs:
        key = (part_of[a], part_of[b])
        between[key] = between.get(key, 0) + 1
    reasons: list[str] = []
    done: set[tuple[int, int]] = set()
    for (pa, pb), total in between.items():
        if pa == pb:
            continue
        hits = [(a, b) for a, b in swapped if (part_of[a], part_of[b]) == (pa, pb)]
        if hits and 2 * len(hits) > total:
            reasons.append(f"swap:{pa}/{pb}")
            done.update(hits)
    names = skeleton.keypoints
    reasons += [f"swap:{names[a]}/{names[b]}" for a, b in swapped if (a, b) not in done]
    return reasons


def check_track(
    poses: Sequence[PoseArray],
    skeleton: Skeleton,
    thresholds: SanityThresholds | None = None,
) -> list[list[str]]:
    """Per frame, the reasons it looks suspicious: "jitter:<point>", "bone:<a>-<b>",
    "swap:<left>/<right>" (a point pair or two whole parts). Clean frames get []."""
    th = thresholds or SanityThresholds()
    track = [as_pose(p, skeleton.num_keypoints) for p in poses]
    scales = [_scale(p) for p in track]
    names = skeleton.keypoints

    # Swapping back is the repair of the frame before, not a new error.
    swaps: list[list[tuple[int, int]]] = [[] for _ in track]
    for t in range(1, len(track)):
        scale = _local_scale(scales, t - 1, t)
        if scale > 0:
            found = _swapped_pairs(track[t - 1], track[t], skeleton, scale, th)
            swaps[t] = [s for s in found if s not in swaps[t - 1]]
    swapped = [{i for pair in s for i in pair} for s in swaps]
    jitter = _jitter(track, scales, th)

    reasons: list[list[str]] = []
    for t in range(len(track)):
        # A one-frame swap also looks like two spikes: report the swap only.
        frame = [f"jitter:{names[i]}" for i in sorted(jitter[t] - swapped[t])]
        scale = _local_scale(scales, t - 1, t) if t > 0 else 0.0
        if scale > 0:
            # Bones touching a spike or a swap only echo it, going in and coming back.
            explained = jitter[t - 1] | jitter[t] | swapped[t - 1] | swapped[t]
            prev, cur = track[t - 1], track[t]
            for a, b in skeleton.edges:
                if a in explained or b in explained:
                    continue
                if not all(p[i, V] == V_VISIBLE for p in (prev, cur) for i in (a, b)):
                    continue
                before, after = _dist(prev[a], prev[b]), _dist(cur[a], cur[b])
                if abs(after - before) > th.bone_change * max(before, th.min_bone * scale):
                    frame.append(f"bone:{names[a]}-{names[b]}")
        reasons.append(frame + _swap_reasons(swaps[t], skeleton))
    return reasons
