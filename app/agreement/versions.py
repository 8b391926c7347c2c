"""The versions a clip's agreement compares, loaded as comparable views: the humans'
submitted work (without reviewers' fixes), the model draft, the gold reference, and the OKS
sigmas of their skeletons."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.agreement.compare import AnnotationView, CharacterView
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    KeypointFrame,
    NodeStatus,
    Revision,
    Shot,
    Source,
    Track,
)
from app.annotations.points import decode_points
from app.batches.models import BatchClip
from app.projects.models import SkeletonTemplate
from app.projects.skeletons import BUILTIN_SKELETONS, DEFAULT_SIGMA, Skeleton

COUNTED = (NodeStatus.submitted, NodeStatus.approved)


def annotation_view(
    session: Session, annotation: Annotation, *, as_submitted: bool = False
) -> AnnotationView:
    """The comparable content of one annotation (one query per table).

    ``as_submitted``: as its annotator submitted it, without the corrections a reviewer made
    in Fix and accept (agreement scores the annotator's work, not the reviewer's)."""
    shots = session.execute(
        select(Shot.id, Shot.start_frame, Shot.end_frame)
        .where(Shot.annotation_id == annotation.id)
        .order_by(Shot.start_frame)
    ).all()
    chars = list(
        session.scalars(
            select(Character).where(Character.annotation_id == annotation.id).order_by(Character.id)
        )
    )
    tracks: dict[int, Track] = {}
    for track in session.scalars(
        select(Track).where(Track.character_id.in_([c.id for c in chars])).order_by(Track.id)
    ):
        tracks.setdefault(track.character_id, track)  # one track per character is the norm
    frames: dict[int, dict[int, Any]] = defaultdict(dict)
    drafts: dict[int, dict[int, Any]] = defaultdict(dict)
    by_track = {t.id: t.character_id for t in tracks.values()}
    frame_at: dict[int, tuple[int, int]] = {}  # keypoint frame id -> (character, frame)
    for row in session.execute(
        select(
            KeypointFrame.id,
            KeypointFrame.track_id,
            KeypointFrame.frame_index,
            KeypointFrame.points,
            KeypointFrame.model_points,
        ).where(KeypointFrame.track_id.in_(list(by_track)))
    ):
        char_id = by_track[row.track_id]
        frame_at[row.id] = (char_id, row.frame_index)
        frames[char_id][row.frame_index] = decode_points(row.points)[0]
        if row.model_points is not None and annotation.kind != AnnotationKind.model:
            drafts[char_id][row.frame_index] = decode_points(row.model_points)[0]
    shot_start = {s.id: s.start_frame for s in shots}
    char_name = {c.id: c.name for c in chars}
    captions: dict[str, str] = {}
    caption_key: dict[int, str] = {}
    is_model = annotation.kind == AnnotationKind.model
    for cap in session.scalars(select(Caption).where(Caption.annotation_id == annotation.id)):
        if cap.level == CaptionLevel.clip:
            key = f"clip:{cap.field}"
        elif cap.level == CaptionLevel.shot and cap.target_id in shot_start:
            key = f"shot@{shot_start[cap.target_id]}:{cap.field}"
        elif cap.level == CaptionLevel.character and cap.target_id in char_name:
            key = f"character:{char_name[cap.target_id]}:{cap.field}"
        else:
            continue
        captions[key] = (cap.text or cap.model_text or "") if is_model else cap.text
        caption_key[cap.id] = key
    if as_submitted:
        _undo_review_fixes(session, annotation, frames, frame_at, captions, caption_key)
    return AnnotationView(
        id=annotation.id,
        annotator_id=annotation.annotator_id,
        version=annotation.version,
        shots=tuple((s.start_frame, s.end_frame) for s in shots),
        tags=dict(annotation.tags),
        quality=dict(annotation.quality),
        captions=captions,
        characters=tuple(
            CharacterView(
                id=c.id,
                name=c.name,
                skeleton=c.skeleton,
                num_points=tracks[c.id].num_points if c.id in tracks else 0,
                emotions=tuple(
                    (int(e["start"]), int(e["end"]), str(e["label"])) for e in c.emotions
                ),
                frames=frames.get(c.id, {}),
                model_frames=drafts.get(c.id, {}),
            )
            for c in chars
        ),
    )


def _undo_review_fixes(
    session: Session,
    annotation: Annotation,
    frames: dict[int, dict[int, Any]],
    frame_at: dict[int, tuple[int, int]],
    captions: dict[str, str],
    caption_key: dict[int, str],
) -> None:
    """Put back what reviewers' fixes replaced (newest first, so the oldest ``before`` wins)."""
    fixes = session.scalars(
        select(Revision)
        .where(Revision.annotation_id == annotation.id, Revision.source == Source.review)
        .order_by(Revision.id.desc())
    )
    for fix in fixes:
        before = fix.before or {}
        if fix.node_type == "keypoint_frame" and fix.node_id in frame_at:
            char_id, frame_index = frame_at[fix.node_id]
            pose = frames[char_id][frame_index] = frames[char_id][frame_index].copy()
            for point, value in before.items():
                pose[int(point), :3] = value
        elif fix.node_type == "caption" and fix.node_id in caption_key:
            captions[caption_key[fix.node_id]] = before.get("text") or ""


def human_versions(session: Session, clip_id: int) -> list[Annotation]:
    """The clip's human annotations that count for agreement (submitted or approved), by id."""
    return list(
        session.scalars(
            select(Annotation)
            .where(
                Annotation.clip_id == clip_id,
                Annotation.kind == AnnotationKind.human,
                Annotation.status.in_(COUNTED),
            )
            .order_by(Annotation.id)
        )
    )


def gold_reference(session: Session, clip_id: int) -> Annotation | None:
    """The approved primary annotation of a clip that some batch uses as gold."""
    is_gold = session.scalar(
        select(exists().where(BatchClip.clip_id == clip_id, BatchClip.is_gold.is_(True)))
    )
    if not is_gold:
        return None
    return session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip_id,
            Annotation.is_primary.is_(True),
            Annotation.status == NodeStatus.approved,
        )
    )


class SigmaResolver:
    """OKS sigmas by skeleton name: built-in, then the project's custom templates, else default."""

    def __init__(self, session: Session, project_id: int) -> None:
        self._session, self._project_id = session, project_id
        self._cache: dict[tuple[str, int], tuple[float, ...]] = {}

    def __call__(self, name: str, k: int) -> tuple[float, ...]:
        if (name, k) not in self._cache:
            skeleton = BUILTIN_SKELETONS.get(name)
            if skeleton is None:
                definition = self._session.scalar(
                    select(SkeletonTemplate.definition).where(
                        SkeletonTemplate.project_id == self._project_id,
                        SkeletonTemplate.name == name,
                    )
                )
                skeleton = Skeleton.from_dict(definition) if definition else None
            sigmas = skeleton.sigmas if skeleton else ()
            self._cache[name, k] = sigmas if len(sigmas) == k else (DEFAULT_SIGMA,) * k
        return self._cache[name, k]
