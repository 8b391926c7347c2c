"""Model-side writers: what the pipeline (and imported predictions) put in a clip's drafts.

The pipeline writes one ``model`` annotation per clip (``annotator_id`` NULL, never primary:
the human side decides what review sees). Every writer here *replaces* what an earlier run
of the same step wrote there, so steps are safe to run twice.

Keypoint re-runs also reach into people's copies. A human (or adjudicated) annotation's
track *follows* a model track when its character has the same name and skeleton and its
frames carry ``model_points`` (they were copied from a draft). For those frames a re-run
stores the new draft in ``model_points``, moves the points that are still model-sourced to
the new draft, never touches human-sourced points, and adds the flag ``model_changed`` where
the draft moved under a human-edited point and now disagrees with it. That flag is sticky:
the human side clears it when the annotator has looked at the frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.annotations.models import (
    Annotation,
    AnnotationKind,
    Caption,
    CaptionLevel,
    Character,
    CharacterKind,
    KeypointFrame,
    Revision,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.annotations.points import (
    SRC_MODEL,
    BoolArray,
    decode_points,
    decode_with_sources,
    encode_points,
)
from app.clips.models import Clip
from app.core.db import utcnow
from app.core.errors import Invalid
from app.media.drawings import DrawingRun
from app.projects.skeletons import (
    COCO_WHOLEBODY,
    V_UNLABELLED,
    PoseArray,
    Skeleton,
    V,
    empty_pose,
    pack_part_validity,
    part_validity,
)

MODEL_CHARACTER_NAME = "character 1"
MODEL_CHANGED = "model_changed"
NO_DETECTION = "no_detection"
LOW_CONF_PREFIX = "low_conf:"
# Flags a draft computes; a re-run replaces them on human copies (``model_changed`` is sticky).
DRAFT_FLAG_PREFIXES = ("jitter:", "bone:", "swap:", LOW_CONF_PREFIX, NO_DETECTION)
# "More than a few pixels": below this a moved draft point is rounding, not news.
MODEL_CHANGED_PX = 3.0
HUMAN_KINDS = (AnnotationKind.human, AnnotationKind.adjudicated)


def find_model_annotation(session: Session, clip_id: int) -> Annotation | None:
    """The clip's model annotation, if the pipeline (or an import) wrote one."""
    return session.scalar(
        select(Annotation)
        .where(
            Annotation.clip_id == clip_id,
            Annotation.kind == AnnotationKind.model,
            Annotation.annotator_id.is_(None),
        )
        .order_by(Annotation.id)
        .limit(1)
    )


def model_annotation(session: Session, clip: Clip) -> Annotation:
    """The clip's model annotation, created on first use (not primary)."""
    annotation = find_model_annotation(session, clip.id)
    if annotation is None:
        annotation = Annotation(clip_id=clip.id, kind=AnnotationKind.model, annotator_id=None)
        session.add(annotation)
        session.flush()
    return annotation


# --------------------------------------------------------------------------- shots


def replace_model_shots(
    session: Session, annotation: Annotation, shots: Sequence[tuple[int, int, str | None]]
) -> list[Shot]:
    """Set the annotation's model shots to ``(start, end, camera_motion)`` ranges.

    Rows are updated in place in start order, so an unchanged re-run keeps shot ids (and the
    shot captions that point at them) stable.
    """
    existing = list(
        session.scalars(
            select(Shot)
            .where(Shot.annotation_id == annotation.id, Shot.source == Source.model)
            .order_by(Shot.start_frame, Shot.id)
        )
    )
    rows: list[Shot] = []
    for i, (start, end, camera) in enumerate(sorted(shots)):
        if i < len(existing):
            shot = existing[i]
            if (shot.start_frame, shot.end_frame, shot.camera_motion) != (start, end, camera):
                shot.start_frame, shot.end_frame, shot.camera_motion = start, end, camera
        else:
            shot = Shot(
                annotation_id=annotation.id,
                start_frame=start,
                end_frame=end,
                camera_motion=camera,
                source=Source.model,
            )
            session.add(shot)
        rows.append(shot)
    for extra in existing[len(rows) :]:
        session.delete(extra)
    session.flush()
    return rows


# --------------------------------------------------------------------------- keypoints


@dataclass(frozen=True)
class FrameDraft:
    """The model's pose for one frame and the review flags it raises."""

    frame_index: int
    pose: PoseArray
    flags: Sequence[str] = ()


@dataclass(frozen=True)
class MergedFrame:
    pose: PoseArray  # the working pose after the merge
    human: BoolArray  # unchanged: who set each point
    points_updated: int  # model-sourced points that took the new draft's value
    model_changed: bool  # the draft moved under a human point and now disagrees with it


def _labelled(pose: PoseArray) -> BoolArray:
    return np.asarray(pose[:, V] > V_UNLABELLED)


def _differs(a: PoseArray, b: PoseArray, tol_px: float) -> BoolArray:
    """Per point: labelled on one side only, or both labelled and farther apart than tol."""
    la, lb = _labelled(a), _labelled(b)
    far = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) > tol_px
    return np.asarray((la != lb) | (la & lb & far))


def merge_frame(
    work: PoseArray,
    human: BoolArray,
    old_model: PoseArray,
    new_model: PoseArray,
    tol_px: float = MODEL_CHANGED_PX,
) -> MergedFrame:
    """Apply a new model draft to one frame of a person's copy (see the module docstring)."""
    if not (work.shape == old_model.shape == new_model.shape) or len(human) != len(work):
        raise ValueError("the copy and the drafts must have the same points")
    human = np.asarray(human, dtype=bool)
    merged = np.where(human[:, None], work, new_model).astype(np.float32)
    updated = int((~human & np.any(work != new_model, axis=1)).sum())
    moved = _differs(old_model, new_model, tol_px)
    disagrees = _differs(new_model, work, tol_px)
    return MergedFrame(merged, human, updated, bool(np.any(human & moved & disagrees)))


def _draft_flags(flags: Iterable[str]) -> list[str]:
    return [f for f in flags if f.startswith(DRAFT_FLAG_PREFIXES)]


def _merged_flags(old: Sequence[str], draft: Sequence[str], changed: bool) -> list[str]:
    kept = [f for f in old if not f.startswith(DRAFT_FLAG_PREFIXES)]
    out = kept + [f for f in _draft_flags(draft) if f not in kept]
    if changed and MODEL_CHANGED not in out:
        out.append(MODEL_CHANGED)
    return out


@dataclass
class MergeSummary:
    """What a re-run did to people's copies of a model track."""

    tracks: int = 0
    frames_updated: int = 0
    points_updated: int = 0
    model_changed_frames: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "tracks": self.tracks,
            "frames_updated": self.frames_updated,
            "points_updated": self.points_updated,
            "model_changed_frames": self.model_changed_frames,
        }


def _merge_into_copies(
    session: Session,
    clip: Clip,
    name: str,
    skeleton: Skeleton,
    drafts: Mapping[int, FrameDraft],
) -> MergeSummary:
    summary = MergeSummary()
    tracks = session.execute(
        select(Track, Character.annotation_id)
        .join(Character, Track.character_id == Character.id)
        .join(Annotation, Character.annotation_id == Annotation.id)
        .where(
            Annotation.clip_id == clip.id,
            Annotation.kind.in_(HUMAN_KINDS),
            Character.name == name,
            Character.skeleton == skeleton.name,
        )
        .order_by(Track.id)
    ).all()
    k = skeleton.num_keypoints
    for track, annotation_id in tracks:
        frames = session.scalars(
            select(KeypointFrame)
            .where(
                KeypointFrame.track_id == track.id,
                KeypointFrame.model_points.is_not(None),
                KeypointFrame.frame_index.in_(list(drafts)),
            )
            .order_by(KeypointFrame.frame_index)
        ).all()
        touched: list[int] = []
        changed_here: list[int] = []
        for row in frames:
            draft = drafts[row.frame_index]
            new_model = encode_points(draft.pose)
            work, sources = decode_with_sources(row.points, k)
            old_model, _ = decode_points(row.model_points or b"", k)
            # Compare what storage holds (confidence is float16 there), not the raw draft.
            # Only the model's own points follow it: tracked ones come from a person's keyframe.
            merged = merge_frame(work, sources != SRC_MODEL, old_model,
                                 decode_points(new_model, k)[0])  # fmt: skip
            points = encode_points(merged.pose, np.where(merged.human, sources, SRC_MODEL))
            flags = _merged_flags(row.flags or [], draft.flags, merged.model_changed)
            if (row.model_points, row.points, list(row.flags or [])) == (new_model, points, flags):
                continue
            row.model_points, row.points, row.flags = new_model, points, flags
            row.part_valid = pack_part_validity(part_validity(merged.pose, skeleton), skeleton)
            touched.append(row.frame_index)
            summary.points_updated += merged.points_updated
            if merged.model_changed:
                changed_here.append(row.frame_index)
        if not touched:
            continue
        summary.tracks += 1
        summary.frames_updated += len(touched)
        summary.model_changed_frames += changed_here
        session.add(
            Revision(
                annotation_id=annotation_id,
                node_type="track",
                node_id=track.id,
                version=track.version,
                action="update",
                source=Source.model,
                after={"model_rerun": {"frames": touched, "model_changed": changed_here}},
                comment="A new model draft updated model-sourced points.",
            )
        )
    session.flush()
    return summary


@dataclass(frozen=True)
class TrackWrite:
    character_id: int
    track_id: int
    frames: int
    copies: MergeSummary


def write_draft_track(
    session: Session,
    clip: Clip,
    *,
    name: str,
    frames: Sequence[FrameDraft],
    skeleton: Skeleton = COCO_WHOLEBODY,
    kind: CharacterKind = CharacterKind.humanoid,
    source: Source = Source.model,
    drawing_runs: Sequence[DrawingRun] = (),
    timing: str | None = None,
) -> TrackWrite:
    """Replace the model annotation's track of character ``name`` with ``frames``, then
    carry the new draft into the people's copies that follow it. ``drawing_runs`` and
    ``timing`` are the character's held drawings and drawing timing, where they were found."""
    annotation = model_annotation(session, clip)
    character = session.scalar(
        select(Character)
        .where(
            Character.annotation_id == annotation.id,
            Character.name == name,
            Character.source == source,
        )
        .order_by(Character.id)
        .limit(1)
    )
    if character is None:
        character = Character(
            annotation_id=annotation.id, name=name, kind=kind, skeleton=skeleton.name, source=source
        )
        session.add(character)
        session.flush()
    elif (character.kind, character.skeleton) != (kind, skeleton.name):
        character.kind, character.skeleton = kind, skeleton.name
    character.drawing_runs = [run.as_json() for run in drawing_runs]
    character.timing = timing
    track = session.scalar(
        select(Track).where(Track.character_id == character.id).order_by(Track.id).limit(1)
    )
    if track is None:
        track = Track(character_id=character.id, num_points=skeleton.num_keypoints, source=source)
        session.add(track)
        session.flush()
    session.execute(delete(KeypointFrame).where(KeypointFrame.track_id == track.id))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for draft in frames:
        blob = encode_points(draft.pose)
        rows.append(
            {
                "track_id": track.id,
                "frame_index": draft.frame_index,
                "points": blob,
                "model_points": blob,
                "is_keyframe": False,
                "part_valid": pack_part_validity(part_validity(draft.pose, skeleton), skeleton),
                "flags": list(draft.flags),
                "version": 1,
                "updated_at": now,
            }
        )
    if rows:
        session.execute(insert(KeypointFrame), rows)
    copies = _merge_into_copies(session, clip, name, skeleton, {f.frame_index: f for f in frames})
    return TrackWrite(character.id, track.id, len(rows), copies)


def remove_draft_characters(
    session: Session, clip: Clip, source: Source, keep: Iterable[str] = ()
) -> int:
    """Delete the model annotation's characters of ``source`` not named in ``keep``.

    People's copies are left alone: what they already hold stays theirs.
    """
    annotation = model_annotation(session, clip)
    kept = list(keep)
    query = delete(Character).where(
        Character.annotation_id == annotation.id, Character.source == source
    )
    if kept:
        query = query.where(Character.name.not_in(kept))
    result = session.execute(query.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def load_track_poses(session: Session, track: Track) -> dict[int, PoseArray]:
    """Frame index -> working pose of one track."""
    rows = session.execute(
        select(KeypointFrame.frame_index, KeypointFrame.points)
        .where(KeypointFrame.track_id == track.id)
        .order_by(KeypointFrame.frame_index)
    )
    return {index: decode_points(blob, track.num_points)[0] for index, blob in rows}


# --------------------------------------------------------------------------- captions, speech


@dataclass(frozen=True)
class CaptionDraftRow:
    level: CaptionLevel
    target_id: int  # shot or character id; 0 for the clip
    field: str  # short | detailed | narrative | descriptive | appearance
    text: str


def replace_model_captions(
    session: Session, annotation: Annotation, rows: Sequence[CaptionDraftRow], model_name: str
) -> int:
    """Set the annotation's captions to ``rows`` (draft in ``model_text`` and in ``text``)."""
    existing = {
        (c.level, c.target_id, c.field): c
        for c in session.scalars(select(Caption).where(Caption.annotation_id == annotation.id))
    }
    for row in rows:
        caption = existing.pop((row.level, row.target_id, row.field), None)
        if caption is None:
            caption = Caption(
                annotation_id=annotation.id,
                level=row.level,
                target_id=row.target_id,
                field=row.field,
            )
            session.add(caption)
        if (caption.text, caption.model_text, caption.model_name) != (
            row.text,
            row.text,
            model_name,
        ):
            caption.text, caption.model_text, caption.model_name = row.text, row.text, model_name
    for stale in existing.values():
        session.delete(stale)
    session.flush()
    return len(rows)


def replace_model_speech(
    session: Session, annotation: Annotation, segments: Sequence[tuple[float, float]]
) -> int:
    """Set the annotation's model speech segments to ``[t0, t1)`` seconds."""
    session.execute(
        delete(SpeechSegment).where(
            SpeechSegment.annotation_id == annotation.id, SpeechSegment.source == Source.model
        )
    )
    session.add_all(
        SpeechSegment(annotation_id=annotation.id, start_s=a, end_s=b, source=Source.model)
        for a, b in segments
    )
    session.flush()
    return len(segments)


# --------------------------------------------------------------------------- COCO-WholeBody import

COCO_PARTS: tuple[tuple[str, int], ...] = (
    ("keypoints", 17),
    ("foot_kpts", 6),
    ("face_kpts", 68),
    ("lefthand_kpts", 21),
    ("righthand_kpts", 21),
)
_FRAME_IN_NAME = re.compile(r"(\d+)\.[A-Za-z0-9]+$")


def _frame_of_image(image: Any, n: int, frame_count: int) -> int:
    where = f"images[{n}]"
    if not isinstance(image, dict) or "id" not in image:
        raise Invalid(f"{where}: an image needs an 'id'.")
    if "frame_index" in image:
        index = image["frame_index"]
        if isinstance(index, bool) or not isinstance(index, int):
            raise Invalid(f"{where}: frame_index must be an integer, got {index!r}.")
    else:
        match = _FRAME_IN_NAME.search(str(image.get("file_name", "")))
        if match is None:
            raise Invalid(
                f"{where}: give 'frame_index' or a file_name ending in the frame number "
                "(e.g. frame_000012.jpg)."
            )
        index = int(match.group(1))
    if not 0 <= index < frame_count:
        raise Invalid(f"{where}: frame {index} is outside the clip (0..{frame_count - 1}).")
    return int(index)


def _coco_pose(ann: dict[str, Any], where: str) -> PoseArray:
    pose = empty_pose(COCO_WHOLEBODY.num_keypoints)
    score = ann.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise Invalid(f"{where}: score must be a number from 0 to 1, got {score!r}.")
    offset = 0
    for key, count in COCO_PARTS:
        values = ann.get(key)
        if values is None:
            if key == "keypoints":
                raise Invalid(f"{where}: 'keypoints' is missing.")
            offset += count
            continue
        if not isinstance(values, list) or len(values) != 3 * count:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise Invalid(f"{where}: {key} must be a list of {3 * count} numbers, got {got}.")
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise Invalid(f"{where}: {key} must hold finite numbers only.")
        triples = np.asarray(values, dtype=np.float32).reshape(count, 3)
        if not np.isin(triples[:, 2], (0, 1, 2)).all():
            raise Invalid(f"{where}: the third value of each {key} point is v, one of 0, 1, 2.")
        part = pose[offset : offset + count]
        labelled = triples[:, 2] > 0
        # COCO puts unlabelled points at (0, 0); keep that whatever the file says.
        part[:, :2] = np.where(labelled[:, None], triples[:, :2], 0)
        part[:, 2] = triples[:, 2]
        part[:, 3] = np.where(labelled, float(score), 0.0)
        offset += count
    return pose


def parse_coco_wholebody(coco: Any, frame_count: int) -> dict[int, dict[int, PoseArray]]:
    """Validate a COCO-WholeBody dict; track id -> frame index -> (133, 4) pose."""
    if not isinstance(coco, dict):
        raise Invalid("The predictions must be a COCO JSON object.")
    images, annotations = coco.get("images"), coco.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise Invalid("The predictions need an 'images' list and an 'annotations' list.")
    frame_of: dict[Any, int] = {}
    for n, image in enumerate(images):
        index = _frame_of_image(image, n, frame_count)
        if image["id"] in frame_of:
            raise Invalid(f"images[{n}]: image id {image['id']!r} appears twice.")
        frame_of[image["id"]] = index
    tracks: dict[int, dict[int, PoseArray]] = {}
    for n, ann in enumerate(annotations):
        where = f"annotations[{n}]"
        if not isinstance(ann, dict):
            raise Invalid(f"{where}: expected an object.")
        if ann.get("image_id") not in frame_of:
            raise Invalid(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'.")
        track_id = ann.get("track_id", 0)
        if isinstance(track_id, bool) or not isinstance(track_id, int):
            raise Invalid(f"{where}: track_id must be an integer, got {track_id!r}.")
        frame = frame_of[ann["image_id"]]
        per_track = tracks.setdefault(track_id, {})
        if frame in per_track:
            raise Invalid(f"{where}: track {track_id} has two annotations on frame {frame}.")
        per_track[frame] = _coco_pose(ann, where)
    if not tracks:
        raise Invalid("The predictions hold no annotations.")
    return tracks


def import_track_name(track_id: int) -> str:
    return f"imported track {track_id}"


def import_coco_wholebody(session: Session, clip: Clip, coco: Any) -> dict[str, object]:
    """Import outside COCO-WholeBody predictions as model drafts, one character per track_id.

    Only the frames the file has are written (nothing is interpolated). The whole file is
    validated first and written in one savepoint, so a bad file writes nothing. A new import
    replaces the characters of the previous one.
    """
    if not clip.frame_count:
        raise Invalid(f"Clip {clip.id} has not been probed yet; import after ingestion.")
    tracks = parse_coco_wholebody(coco, clip.frame_count)
    names = {tid: import_track_name(tid) for tid in tracks}
    with session.begin_nested():
        removed = remove_draft_characters(session, clip, Source.import_, keep=names.values())
        written = [
            write_draft_track(
                session,
                clip,
                name=names[tid],
                frames=[FrameDraft(i, pose) for i, pose in sorted(frames.items())],
                source=Source.import_,
            )
            for tid, frames in sorted(tracks.items())
        ]
    return {
        "tracks": len(written),
        "frames": sum(w.frames for w in written),
        "replaced_characters": removed,
        "character_ids": [w.character_id for w in written],
    }
