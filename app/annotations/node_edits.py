"""Edits of the annotation's other nodes: characters, captions, tags, shots, emotions, quality
and speech segments. Each follows the one edit pattern
(:func:`app.annotations.revisions.apply_edit`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.annotations.access import editable_annotation, editable_child
from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    CharacterKind,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.revisions import apply_edit
from app.auth.models import User
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import Invalid
from app.projects.service import project_skeleton

# ---------------------------------------------------------------- characters


def add_character(
    session: Session, user: User, annotation_id: int, name: str, kind: CharacterKind, skeleton: str
) -> Character:
    """A person's new character; its track has as many points as its skeleton (built-in or
    the project's own), none for ``none`` (a box only)."""
    annotation = editable_annotation(session, user, annotation_id)
    num_points = 0
    if skeleton != "none":
        project_id = session.get_one(Clip, annotation.clip_id).project_id
        num_points = project_skeleton(session, project_id, skeleton).num_keypoints
    character = Character(
        annotation_id=annotation.id,
        name=name.strip() or "character",
        kind=kind,
        skeleton=skeleton,
        emotions=[],
        source=Source.human,
    )
    session.add(character)
    session.flush()

    def add_track() -> dict[str, Any]:
        if num_points:
            session.add(
                Track(character_id=character.id, num_points=num_points, source=Source.human)
            )
        return {"name": character.name, "kind": kind.value, "skeleton": skeleton}

    apply_edit(session, user, annotation, character, node_type="character", action="create",
               before=None, change=add_track)  # fmt: skip
    return character


def delete_character(session: Session, user: User, character_id: int, version: int) -> None:
    character, annotation = editable_child(session, user, Character, character_id, "character")
    before = {"name": character.name, "kind": character.kind.value, "skeleton": character.skeleton}
    apply_edit(
        session, user, annotation, character, node_type="character", action="delete",
        before=before, change=lambda: session.delete(character), version=version,
        shown={"name": character.name},
    )  # fmt: skip


# ---------------------------------------------------------------- captions


def update_caption(
    session: Session, user: User, caption_id: int, text: str, version: int
) -> Caption:
    caption, annotation = editable_child(session, user, Caption, caption_id, "caption")
    _write_caption(session, user, annotation, caption, text, "update", Source.human, version)
    return caption


def review_fix_caption(session: Session, reviewer: User, caption: Caption, text: str) -> None:
    """A reviewer's correction of a caption, recorded as theirs (source ``review``).

    No edit check: review's Fix and accept decides who may, and accepts in the same step."""
    annotation = session.get_one(Annotation, caption.annotation_id)
    _write_caption(session, reviewer, annotation, caption, text, "review_fix", Source.review)


def _write_caption(
    session: Session,
    user: User,
    annotation: Annotation,
    caption: Caption,
    text: str,
    action: str,
    source: Source,
    version: int | None = None,
) -> None:
    def write() -> dict[str, str]:
        caption.text = text
        caption.updated_by_id = user.id
        return {"text": text}

    apply_edit(session, user, annotation, caption, node_type="caption", action=action,
               before={"text": caption.text}, change=write, version=version,
               source=source)  # fmt: skip


# ---------------------------------------------------------------- tags and shots

FREE_TAG = re.compile(r"^[\w\-]{1,40}$")


def free_tag(typed: str, *, allowed: bool) -> str:
    """A tag value an annotator typed, for projects that allow free-text tags; spaces
    become ``_`` so it reads like the vocabulary's own values."""
    if not allowed:
        raise Invalid("This project takes only the listed tags: choose one of them.")
    value = "_".join(typed.split())
    if not FREE_TAG.match(value):
        raise Invalid("A tag may use letters, digits, '_' and '-' (at most 40 characters).")
    return value


def set_tags(
    session: Session,
    user: User,
    annotation_id: int,
    tags: dict[str, Any],
    version: int,
    vocabulary: dict[str, list[str]],
    *,
    free_text: bool = False,
) -> Annotation:
    """Set tag groups; values come from the vocabulary, or are typed (``free_text``)."""
    annotation = editable_annotation(session, user, annotation_id)
    for group, value in tags.items():
        allowed = vocabulary.get(group)
        values = [v for v in (value if isinstance(value, list) else [value]) if v is not None]
        typed = [v for v in values if v not in (allowed or [])]
        if allowed is None or (
            typed and not (free_text and all(FREE_TAG.match(str(v)) for v in typed))
        ):
            raise Invalid(f"{group}={value!r} is not in the project's tag vocabulary.")

    def write() -> dict[str, Any]:
        annotation.tags = {**annotation.tags, **tags}
        return annotation.tags

    apply_edit(session, user, annotation, annotation, node_type="annotation", action="tags",
               before=dict(annotation.tags), change=write, version=version,
               shown={"tags": annotation.tags})  # fmt: skip
    return annotation


def set_shot_boundaries(
    session: Session, user: User, annotation_id: int, starts: Sequence[int], version: int
) -> list[Shot]:
    """Move, split or merge shots by giving the new list of shot start frames."""
    annotation = editable_annotation(session, user, annotation_id)
    clip = session.get_one(Clip, annotation.clip_id)
    n = clip.frame_count or 0
    cuts = sorted({int(s) for s in starts} | {0})
    if any(not 0 <= s < n for s in cuts):
        raise Invalid(f"Shot starts must lie within 0-{n - 1}.")
    old = list(
        session.scalars(
            select(Shot).where(Shot.annotation_id == annotation.id).order_by(Shot.start_frame)
        )
    )
    before = [[s.start_frame, s.end_frame] for s in old]
    keep: list[Shot] = old

    def cut() -> list[list[int]]:
        nonlocal keep
        if before == [[a, b] for a, b in itertools.pairwise([*cuts, n])]:
            return before  # the same boundaries again: nothing to write
        by_start = {s.start_frame: s for s in old}
        keep = []
        for start, end in zip(cuts, [*cuts[1:], n], strict=True):
            shot = by_start.pop(start, None)
            if shot is None:
                shot = Shot(annotation_id=annotation.id, start_frame=start, end_frame=end,
                            source=Source.human)  # fmt: skip
                session.add(shot)
            shot.end_frame = end
            keep.append(shot)
        for gone in by_start.values():
            session.execute(
                delete(Caption).where(
                    Caption.annotation_id == annotation.id,
                    Caption.level == "shot",
                    Caption.target_id == gone.id,
                )
            )
            session.delete(gone)
        annotation.updated_at = utcnow()
        return [[s.start_frame, s.end_frame] for s in keep]

    apply_edit(session, user, annotation, annotation, node_type="annotation", action="shots",
               before=before, change=cut, version=version, shown={"shots": "changed"})  # fmt: skip
    return keep


# ---------------------------------------------------------------- emotions and quality


def set_emotions(
    session: Session,
    user: User,
    character_id: int,
    spans: Sequence[dict[str, Any]],
    version: int,
    labels: Sequence[str],
) -> Character:
    """Replace a character's emotion labels over frame ranges ([start, end) with a label)."""
    character, annotation = editable_child(session, user, Character, character_id, "character")
    clip = session.get_one(Clip, annotation.clip_id)
    clean = []
    for span in spans:
        start, end, label = int(span["start"]), int(span["end"]), str(span["label"])
        if label not in labels:
            raise Invalid(f"{label!r} is not one of the project's emotion labels.")
        frames = clip.frame_count or 0
        if start >= end:
            raise Invalid(
                f"Emotion range {start}-{end}: the end frame (excluded) must come after the start."
            )
        if not 0 <= start < end <= frames:
            raise Invalid(f"Emotion range {start}-{end} is outside the clip (frames 0-{frames}).")
        clean.append({"start": start, "end": end, "label": label})

    def write() -> list[dict[str, Any]]:
        character.emotions = sorted(clean, key=lambda s: s["start"])
        return character.emotions

    apply_edit(session, user, annotation, character, node_type="character", action="emotions",
               before=list(character.emotions), change=write, version=version,
               shown={"emotions": character.emotions})  # fmt: skip
    return character


def set_quality(
    session: Session,
    user: User,
    annotation_id: int,
    keep: bool,
    reasons: Sequence[str],
    version: int,
    *,
    no_speech: bool | None = None,
) -> Annotation:
    """The clip's keep/discard decision with reasons (and the explicit 'no speech' answer)."""
    annotation = editable_annotation(session, user, annotation_id)
    if not keep and not reasons:
        raise Invalid("Say why the clip should be discarded.")
    quality: dict[str, Any] = {"keep": keep, "reasons": [r for r in reasons if r]}
    if no_speech is not None:
        quality["no_speech"] = no_speech

    def write() -> dict[str, Any]:
        annotation.quality = quality
        return quality

    apply_edit(session, user, annotation, annotation, node_type="annotation", action="quality",
               before=dict(annotation.quality), change=write, version=version,
               shown={"quality": annotation.quality})  # fmt: skip
    return annotation


# ---------------------------------------------------------------- speech


def _speech_bounds(clip: Clip, start_s: float, end_s: float) -> None:
    duration = clip.duration_s or 0.0
    if not 0 <= start_s < end_s <= duration + 1e-6:
        raise Invalid(f"A speech segment must satisfy 0 <= start < end <= {duration:.2f} s.")


def _speech_fields(segment: SpeechSegment) -> dict[str, Any]:
    return {"start": segment.start_s, "end": segment.end_s, "transcript": segment.transcript}


def add_speech(
    session: Session,
    user: User,
    annotation_id: int,
    start_s: float,
    end_s: float,
    transcript: str = "",
) -> SpeechSegment:
    annotation = editable_annotation(session, user, annotation_id)
    _speech_bounds(session.get_one(Clip, annotation.clip_id), start_s, end_s)
    segment = SpeechSegment(
        annotation_id=annotation.id,
        start_s=start_s,
        end_s=end_s,
        transcript=transcript,
        source=Source.human,
    )
    session.add(segment)
    session.flush()
    apply_edit(session, user, annotation, segment, node_type="speech_segment", action="create",
               before=None, change=lambda: _speech_fields(segment))  # fmt: skip
    return segment


def update_speech(
    session: Session,
    user: User,
    segment_id: int,
    start_s: float,
    end_s: float,
    transcript: str,
    version: int,
) -> SpeechSegment:
    segment, annotation = editable_child(session, user, SpeechSegment, segment_id, "speech segment")
    _speech_bounds(session.get_one(Clip, annotation.clip_id), start_s, end_s)

    def write() -> dict[str, Any]:
        segment.start_s, segment.end_s, segment.transcript = start_s, end_s, transcript
        return _speech_fields(segment)

    apply_edit(session, user, annotation, segment, node_type="speech_segment", action="update",
               before=_speech_fields(segment), change=write, version=version)  # fmt: skip
    return segment


def delete_speech(session: Session, user: User, segment_id: int, version: int) -> None:
    segment, annotation = editable_child(session, user, SpeechSegment, segment_id, "speech segment")
    apply_edit(session, user, annotation, segment, node_type="speech_segment", action="delete",
               before=_speech_fields(segment), change=lambda: session.delete(segment),
               version=version)  # fmt: skip
