"""Opening work: a person's annotation of a clip, created on first open as a copy of the model
draft, and the assignment it belongs to started.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.annotations.access import visible_annotation
from app.annotations.drafts import find_model_annotation
from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    KeypointFrame,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.revisions import record_revision
from app.auth.models import Role, User
from app.batches.claims import next_clip
from app.batches.models import Assignment, AssignmentState
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound


def open_annotation(session: Session, clip: Clip, user: User) -> Annotation:
    """The user's annotation of the clip, created on first open as a copy of the model draft."""
    existing = session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip.id,
            Annotation.annotator_id == user.id,
            Annotation.kind == AnnotationKind.human,
        )
    )
    if existing is not None:
        return existing
    draft = find_model_annotation(session, clip.id)
    annotation = Annotation(
        clip_id=clip.id,
        kind=AnnotationKind.human,
        annotator_id=user.id,
        tags=dict(draft.tags) if draft else {},
        quality=dict(draft.quality) if draft else {},
        timing=(draft.timing if draft else None) or clip.detected_timing,
    )
    session.add(annotation)
    session.flush()
    if draft is not None:
        _copy_children(session, draft, annotation)
    record_revision(
        session,
        annotation=annotation,
        node_type="annotation",
        node_id=annotation.id,
        version=1,
        action="create",
        user=user,
        source=Source.system,
        before=None,
        after={"from_model": draft.id if draft else None},
    )
    return annotation


RELEASED = "This assignment was released (taken back, or its lease ran out). Ask for the next clip."


def assignment_work(
    session: Session, user: User, assignment_id: int
) -> tuple[Assignment, Annotation | None]:
    """An assignment the user may see (annotators only their own) and its annotation, None
    until its annotator starts it. Looking changes nothing."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or (user.role == Role.annotator and assignment.annotator_id != user.id):
        raise NotFound(f"No assignment {assignment_id}.")
    if assignment.state == AssignmentState.released:
        raise Forbidden(RELEASED)
    if assignment.annotation_id is None:
        return assignment, None
    return assignment, visible_annotation(session, user, assignment.annotation_id)


def open_assignment(
    session: Session, user: User, assignment_id: int
) -> tuple[Assignment, Annotation]:
    """Start (or resume) work on one's own assignment: its annotation (a copy of the model
    draft on the first start), its state in progress. Runs on a POST only (the claim of the
    next clip, or Start); only the assigned annotator starts their work."""
    assignment, _ = assignment_work(session, user, assignment_id)
    if assignment.annotator_id != user.id:
        raise Forbidden("Only the annotator it is assigned to starts work on this clip.")
    clip = session.get_one(Clip, assignment.clip_id)
    annotation = open_annotation(session, clip, user)
    assignment.annotation_id = annotation.id
    if assignment.state == AssignmentState.assigned:
        assignment.state = AssignmentState.in_progress
        assignment.started_at = assignment.started_at or utcnow()
    return assignment, annotation


def claim_next_clip(
    session: Session, annotator: User, *, batch_id: int | None = None
) -> Assignment | None:
    """The annotator's next clip (their unfinished one first), started:
    what Next clip does on the web, over the API and in the CLI. None when nothing waits."""
    assignment = next_clip(session, annotator, batch_id=batch_id)
    if assignment is not None:
        open_assignment(session, annotator, assignment.id)
    return assignment


def _copy_children(session: Session, source: Annotation, target: Annotation) -> None:
    shot_ids: dict[int, int] = {}
    for shot in session.scalars(
        select(Shot).where(Shot.annotation_id == source.id).order_by(Shot.start_frame)
    ):
        copy = Shot(
            annotation_id=target.id,
            start_frame=shot.start_frame,
            end_frame=shot.end_frame,
            camera_motion=shot.camera_motion,
            source=shot.source,
        )
        session.add(copy)
        session.flush()
        shot_ids[shot.id] = copy.id
    char_ids: dict[int, int] = {}
    for char in session.scalars(select(Character).where(Character.annotation_id == source.id)):
        copy_char = Character(
            annotation_id=target.id,
            name=char.name,
            kind=char.kind,
            skeleton=char.skeleton,
            reference_frame=char.reference_frame,
            emotions=list(char.emotions),
            source=char.source,
            drawing_runs=list(char.drawing_runs),
            timing=char.timing,
        )
        session.add(copy_char)
        session.flush()
        char_ids[char.id] = copy_char.id
        for track in session.scalars(select(Track).where(Track.character_id == char.id)):
            copy_track = Track(
                character_id=copy_char.id, num_points=track.num_points, source=track.source
            )
            session.add(copy_track)
            session.flush()
            rows = session.execute(
                select(
                    KeypointFrame.frame_index,
                    KeypointFrame.points,
                    KeypointFrame.model_points,
                    KeypointFrame.is_keyframe,
                    KeypointFrame.part_valid,
                    KeypointFrame.flags,
                ).where(KeypointFrame.track_id == track.id)
            ).all()
            if rows:
                session.execute(
                    insert(KeypointFrame),
                    [
                        {
                            "track_id": copy_track.id,
                            "frame_index": r.frame_index,
                            "points": r.points,
                            "model_points": r.model_points or r.points,
                            "is_keyframe": r.is_keyframe,
                            "part_valid": r.part_valid,
                            "flags": list(r.flags),
                            "version": 1,
                        }
                        for r in rows
                    ],
                )
    # Shot and character ids can coincide: map caption targets per level.
    targets = {
        CaptionLevel.clip: {0: 0},
        CaptionLevel.shot: shot_ids,
        CaptionLevel.character: char_ids,
    }
    for cap in session.scalars(select(Caption).where(Caption.annotation_id == source.id)):
        target_id = targets[cap.level].get(cap.target_id)
        if target_id is None:
            continue
        session.add(
            Caption(
                annotation_id=target.id,
                level=cap.level,
                target_id=target_id,
                field=cap.field,
                text=cap.text or cap.model_text or "",
                model_text=cap.model_text,
                model_name=cap.model_name,
            )
        )
    for seg in session.scalars(
        select(SpeechSegment).where(SpeechSegment.annotation_id == source.id)
    ):
        session.add(
            SpeechSegment(
                annotation_id=target.id,
                start_s=seg.start_s,
                end_s=seg.end_s,
                transcript=seg.transcript,
                source=seg.source,
            )
        )
    session.flush()
