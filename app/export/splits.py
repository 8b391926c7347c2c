"""The train/val/test split of a snapshot: by clip (no clip on two sides), seeded, with the
requested percentages met in every stratum (the clip's subsets and its characters' kinds).

Within a stratum, clips are ordered by a hash of (seed, clip key) and the first
``round(n * val%)`` go to val, the next ``round(n * test%)`` to test, the rest to train. The
clip key is the content hash prefix, so the same seed splits the same clips the same way in
every snapshot (and on every instance holding the same files).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from app.export.options import ExportOptions

TRAIN, VAL, TEST = "train", "val", "test"


@dataclass(frozen=True)
class SplitClip:
    """What splitting needs of a clip."""

    clip_id: int
    key: str  # app.export.formats.bundle.clip_key
    subsets: tuple[str, ...]
    kinds: tuple[str, ...]  # its characters' kinds

    @property
    def stratum(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(sorted(set(self.subsets))), tuple(sorted(set(self.kinds)))


def split_names(options: ExportOptions) -> tuple[str, ...]:
    """The splits a snapshot has: train and val, and test when asked for."""
    return (TRAIN, VAL, TEST) if options.test_percent > 0 else (TRAIN, VAL)


def share(count: int, percent: float) -> int:
    """``percent`` of ``count`` clips, rounded half up."""
    return math.floor(count * percent / 100 + 0.5)


def assign_splits(clips: Iterable[SplitClip], options: ExportOptions) -> dict[int, str]:
    """clip id -> split."""
    strata: dict[tuple[tuple[str, ...], tuple[str, ...]], list[SplitClip]] = {}
    for clip in clips:
        strata.setdefault(clip.stratum, []).append(clip)
    out: dict[int, str] = {}
    for members in strata.values():
        members.sort(key=lambda c: (_rank(options.split_seed, c.key), c.clip_id))
        val = share(len(members), options.val_percent)
        test = share(len(members), options.test_percent)
        for i, clip in enumerate(members):
            out[clip.clip_id] = VAL if i < val else TEST if i < val + test else TRAIN
    return out


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
