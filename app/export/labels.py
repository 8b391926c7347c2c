"""Which exported keypoints are labelled: the one rule every export format applies.

A point is a training target only when a person stands behind it. COCO, Ultralytics and
mmpose treat any v > 0 as a labelled position, so a model's guess written with v > 0 becomes
a target nobody checked. Labelled (see docs/export-formats.md):

- a person placed or moved it, or accepted it (one by one or in bulk), and it is visible or
  occluded (v > 0); or
- the project counts approved model points (``approved_model_points_count``), the track is
  approved, and the untouched model (or tracked) point is visible or occluded with a
  confidence at least the project's floor.

A tracked point (carried from a person's keyframe by point tracking) is a guess like the
model's until a person accepts or moves it.

Every other point is written as not labelled (x = y = v = 0). The CelLabel format keeps the
stored points as they are, with their sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.annotations.points import BoolArray, SourceArray, by_person
from app.projects.models import DEFAULT_CONFIDENCE_FLOOR
from app.projects.skeletons import CONF, PoseArray, V

APPROVED = "approved"


@dataclass(frozen=True)
class LabelRule:
    """A project's answer to "does an untouched model point count": its settings."""

    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR
    approved_model_points_count: bool = False

    @classmethod
    def of_project(cls, settings: Mapping[str, Any]) -> LabelRule:
        """The rule of a project's settings (its model columns, or a snapshot's header)."""
        return cls(
            confidence_floor=float(
                settings.get("keypoint_confidence_floor", DEFAULT_CONFIDENCE_FLOOR)
            ),
            approved_model_points_count=bool(settings.get("approved_model_points_count", False)),
        )


def labelled_points(
    poses: PoseArray, sources: SourceArray, rule: LabelRule, *, track_status: str
) -> BoolArray:
    """Per point (any leading shape), whether exports write it as labelled."""
    shown = poses[..., V] > 0
    person = by_person(sources)
    if rule.approved_model_points_count and track_status == APPROVED:
        return shown & (person | (poses[..., CONF] >= rule.confidence_floor))
    return shown & person


def exported_poses(
    poses: PoseArray, sources: SourceArray, rule: LabelRule, *, track_status: str
) -> PoseArray:
    """``poses`` with every point that is not labelled zeroed (x = y = v = conf = 0)."""
    keep = labelled_points(poses, sources, rule, track_status=track_status)
    return np.where(keep[..., np.newaxis], poses, np.float32(0)).astype(np.float32)
