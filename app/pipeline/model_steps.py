"""Pre-annotation steps that write the model's drafts: shots, keypoints, faces, caption, audio.

Each takes (session, clip), replaces what its previous run wrote (see app.annotations.drafts)
and returns a small JSON summary kept on the job row. docs/pipeline.md describes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations import drafts
from app.annotations.models import (
    CaptionLevel,
    Character,
    Shot,
    Source,
    Track,
)
from app.clips.models import Clip
from app.clips.paths import source_path
from app.core.config import get_settings
from app.media.decode import Image, iter_frames, read_audio
from app.media.drawing_match import DrawingFollower
from app.media.timing import drawing_timing
from app.pipeline.camera import MotionAccumulator, camera_motion
from app.pipeline.captioner import (
    BuiltinCaptioner,
    CharacterFacts,
    ClipFacts,
    ShotFacts,
    framing_from_box,
    make_captioner,
)
from app.pipeline.colours import dominant_colours
from app.pipeline.held import HeldAccumulator, dominant_timing, resize_long_side
from app.pipeline.keypoints import extract_keypoints, low_confidence_points
from app.pipeline.quality import (
    QualityAccumulator,
    QualityThresholds,
    quality_flags,
    quality_scores,
)
from app.pipeline.registry import register_step
from app.pipeline.sanity import check_track
from app.pipeline.shots import ShotAccumulator
from app.pipeline.smoothing import smooth_faces
from app.pipeline.speech import speech_segments
from app.projects.models import Project
from app.projects.skeletons import COCO_WHOLEBODY, V_VISIBLE, PoseArray, V

# The shots pass decodes at this width: every analysis in it works at <= 256 px except the
# text score, which upscales to 640 anyway.
SHOTS_DECODE_WIDTH = 320
COLOUR_EVERY = 6  # frames between colour samples
COLOUR_WIDTH = 64
CAPTION_FRAMES = 8  # frames kept for an endpoint captioner
CAPTION_WIDTH = 512
KEYPOINT_SUBSETS = frozenset({"pose", "face_video", "face_audio"})
FACE_SUBSETS = frozenset({"face_video", "face_audio"})
FACE = COCO_WHOLEBODY.parts["face"]


def _has_keypoint_subset(clip: Clip) -> bool:
    return bool(KEYPOINT_SUBSETS.intersection(clip.subsets))


def _has_face_subset(clip: Clip) -> bool:
    return bool(FACE_SUBSETS.intersection(clip.subsets))


def _thresholds(project: Project) -> QualityThresholds:
    """The admin's limits over the defaults (keys this version does not know are ignored)."""
    known = {f.name for f in fields(QualityThresholds)}
    return QualityThresholds(**{k: v for k, v in project.quality_thresholds.items() if k in known})


@register_step("shots")
def shots_step(session: Session, clip: Clip) -> dict[str, object]:
    """Shots with camera motion, held runs and timing, quality scores, flags and colours."""
    shots_acc, held_acc = ShotAccumulator(), HeldAccumulator()
    motion_acc, quality_acc = MotionAccumulator(), QualityAccumulator()
    colour_frames: dict[int, Image] = {}
    previous: Image | None = None
    for index, rgb in enumerate(iter_frames(source_path(clip), max_width=SHOTS_DECODE_WIDTH)):
        shots_acc.update(index, rgb)
        is_held = held_acc.update(index, rgb)
        # A held frame repeats its drawing: giving the motion pass the same pixels again
        # records zero motion without computing an optical flow (half the flows on twos).
        motion_acc.update(index, previous if is_held and previous is not None else rgb)
        if not is_held:
            previous = rgb
        quality_acc.update(index, rgb)
        if index % COLOUR_EVERY == 0:
            colour_frames[index] = resize_long_side(rgb, COLOUR_WIDTH)
    shots = shots_acc.result()
    held = held_acc.result()
    motions = motion_acc.result()
    cameras = [camera_motion(motions, shot) for shot in shots]
    scores = quality_scores(motions, shots, quality_acc.result())
    project = session.get_one(Project, clip.project_id)
    flags = quality_flags(scores, _thresholds(project))
    shot_colours = [
        [name for name, _ in dominant_colours([f for i, f in colour_frames.items() if a <= i < b])]
        for a, b in shots
    ]
    colours = dominant_colours(list(colour_frames.values()))
    timing = dominant_timing(held.runs, held.frame_count)

    clip.held_runs = [list(run) for run in held.runs]
    clip.detected_timing = timing
    clip.scores = {
        "motion": round(scores.motion, 4),
        "blur": round(scores.blur, 4),
        "text": round(scores.text, 4),
        "colours": [[name, share] for name, share in colours],
        "shot_colours": shot_colours,
    }
    clip.quality_flags = flags
    annotation = drafts.model_annotation(session, clip)
    annotation.timing = timing
    annotation.quality = {"keep": not flags, "reasons": sorted(flags)}
    drafts.replace_model_shots(
        session, annotation, [(a, b, cam) for (a, b), cam in zip(shots, cameras, strict=True)]
    )
    return {
        "frames": held.frame_count,
        "shots": len(shots),
        "held_runs": len(held.runs),
        "timing": timing,
        "flags": sorted(flags),
    }


def frame_flags(poses: Sequence[PoseArray], found: Sequence[bool]) -> list[list[str]]:
    """Review flags per frame: temporal sanity reasons, ``low_conf:<n>``, ``no_detection``."""
    sanity = check_track(poses, COCO_WHOLEBODY)
    out = []
    for pose, hit, reasons in zip(poses, found, sanity, strict=True):
        flags = list(reasons)
        if not hit:
            flags.append(drafts.NO_DETECTION)
        elif low := low_confidence_points(pose):
            flags.append(f"{drafts.LOW_CONF_PREFIX}{len(low)}")
        out.append(flags)
    return out


def _model_shots(session: Session, clip: Clip) -> list[Shot]:
    """The shots step's shots of the clip, in order."""
    annotation = drafts.model_annotation(session, clip)
    return list(
        session.scalars(
            select(Shot)
            .where(Shot.annotation_id == annotation.id, Shot.source == Source.model)
            .order_by(Shot.start_frame)
        )
    )


@register_step("keypoints", model=True, applies=_has_keypoint_subset)
def keypoints_step(session: Session, clip: Clip) -> dict[str, object]:
    """MediaPipe Holistic -> one COCO-WholeBody model track, the model run once per drawing.

    The character's held drawings (found inside its box, slid, panned or zoomed) carry the
    model's result of their first frame, except on face clips; where the model found nobody
    (and on face clips), whole-frame held runs reuse theirs. Face points are smoothed over
    time. Every frame gets a row once the model
    found someone somewhere in the clip (frames where it found nobody hold an unlabelled pose
    and the flag ``no_detection``), so people can add the missed frames in place. If it found
    nobody at all, no character is written.
    """
    project = session.get_one(Project, clip.project_id)
    cuts = [shot.start_frame for shot in _model_shots(session, clip)]
    # On face clips the face is what people label, and a talking mouth changes inside a head
    # that holds its drawing: the follower, comparing the whole character, carried a fifth of
    # its frames across such changes (bench/face_smoothing.py: face error 3.86 % of the face
    # box per drawing, 3.64 % with the model on every frame), so faces get the model each frame.
    follower = None if _has_face_subset(clip) else DrawingFollower()
    extraction = extract_keypoints(
        iter_frames(source_path(clip)),
        follower=follower,
        cuts=cuts,
        held_runs=[(int(a), int(b)) for a, b in clip.held_runs],
        confidence_floor=project.keypoint_confidence_floor,
        face_fallback=_has_face_subset(clip),
    )
    if clip.fps:
        extraction = smooth_faces(extraction, clip.fps, cuts)
    frames = extraction.frames
    found = [f.found for f in frames]
    timing = (
        drawing_timing(extraction.drawing_runs, len(frames), visible=found) if follower else None
    )
    summary: dict[str, object] = {
        "frames": len(frames),
        "model_calls": extraction.model_calls,
        "found_frames": sum(found),
        "face_mesh_frames": sum(f.face_from_mesh for f in frames),
        "drawing_runs": len(extraction.drawing_runs),
        "timing": timing,
    }
    if not any(found):
        removed = drafts.remove_draft_characters(session, clip, Source.model)
        return {**summary, "characters": 0, "removed": removed}
    flags = frame_flags([f.pose for f in frames], found)
    written = drafts.write_draft_track(
        session,
        clip,
        name=drafts.MODEL_CHARACTER_NAME,
        frames=[
            drafts.FrameDraft(f.frame_index, f.pose, fl)
            for f, fl in zip(frames, flags, strict=True)
        ],
        drawing_runs=extraction.drawing_runs,
        timing=timing,
    )
    flagged = sum(1 for fl in flags if fl)
    return {
        **summary,
        "characters": 1,
        "flagged_frames": flagged,
        "copies": written.copies.as_dict(),
    }


def _model_tracks(session: Session, clip: Clip) -> list[tuple[Character, Track]]:
    annotation = drafts.model_annotation(session, clip)
    rows = session.execute(
        select(Character, Track)
        .join(Track, Track.character_id == Character.id)
        .where(Character.annotation_id == annotation.id)
        .order_by(Character.id, Track.id)
    ).all()
    return [(c, t) for c, t in rows]


def _face_quality(pose: PoseArray) -> float:
    """Visible face points times their mean confidence: how usable the frame's face is."""
    face = pose[list(FACE)]
    visible = face[:, V] == V_VISIBLE
    return float(visible.sum() * face[visible, 3].mean()) if visible.any() else 0.0


@register_step("faces", model=True, applies=_has_face_subset)
def faces_step(session: Session, clip: Clip) -> dict[str, object]:
    """68-point face landmarks: the face part (points 23-90) of the keypoints track.

    Holistic's face landmarks already are a FaceMesh run on the face crop, so running a face
    model again would compute the same points twice; this step reads them from the track,
    sets each model character's reference frame to its best face and counts face frames.
    Expression labels are left empty: no rule here can honestly tell the emotions apart.
    """
    characters = face_frames = 0
    for character, track in _model_tracks(session, clip):
        if character.skeleton != COCO_WHOLEBODY.name:
            continue
        quality = {i: _face_quality(p) for i, p in drafts.load_track_poses(session, track).items()}
        with_face = [i for i, q in quality.items() if q > 0]
        character.reference_frame = max(with_face, key=quality.__getitem__) if with_face else None
        characters += 1
        face_frames += len(with_face)
    session.flush()
    return {"characters": characters, "face_frames": face_frames, "emotions": "not drafted"}


def _character_facts(
    session: Session, clip: Clip, shots: Sequence[tuple[int, int]]
) -> list[tuple[Character, CharacterFacts]]:
    """Kind, median box of visible points, framing and shots of each model character."""
    out = []
    for character, track in _model_tracks(session, clip):
        boxes: dict[int, tuple[float, float, float, float]] = {}
        for index, pose in drafts.load_track_poses(session, track).items():
            pts = pose[pose[:, V] == V_VISIBLE, :2]
            if len(pts):
                (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
                boxes[index] = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        if not boxes:
            continue
        box = tuple(float(v) for v in np.median(np.array(list(boxes.values())), axis=0))
        in_shots = [n for n, (a, b) in enumerate(shots) if any(a <= i < b for i in boxes)]
        facts = CharacterFacts(
            kind=character.kind.value,
            detected=True,
            box=(box[0], box[1], box[2], box[3]),
            framing=framing_from_box((box[0], box[1], box[2], box[3]), clip.height or 0),
            shots=in_shots,
        )
        out.append((character, facts))
    return out


def _caption_frames(clip: Clip) -> list[Image]:
    """Evenly spaced frames for an endpoint captioner (the builtin one needs none)."""
    n = clip.frame_count or 0
    wanted = {int(i) for i in np.linspace(0, max(n - 1, 0), CAPTION_FRAMES).round()}
    return [
        rgb
        for i, rgb in enumerate(iter_frames(source_path(clip), max_width=CAPTION_WIDTH))
        if i in wanted
    ]


@register_step("caption")
def caption_step(session: Session, clip: Clip) -> dict[str, object]:
    """Clip, shot and character captions from the measured facts, through the captioner."""
    annotation = drafts.model_annotation(session, clip)
    shot_rows = _model_shots(session, clip)
    ranges = [(s.start_frame, s.end_frame) for s in shot_rows]
    shot_colours = clip.scores.get("shot_colours") or [[] for _ in shot_rows]
    characters = _character_facts(session, clip, ranges)
    facts = ClipFacts(
        width=clip.width or 0,
        height=clip.height or 0,
        fps=clip.fps or 0.0,
        frame_count=clip.frame_count or 0,
        shots=[
            ShotFacts(s.start_frame, s.end_frame, s.camera_motion, tuple(colours))
            for s, colours in zip(shot_rows, shot_colours, strict=False)
        ],
        timing=clip.detected_timing,
        colours=[name for name, _ in clip.scores.get("colours", [])],
        motion=clip.scores.get("motion"),
        characters=[f for _, f in characters],
    )
    settings = get_settings()
    key = settings.caption_api_key.get_secret_value() if settings.caption_api_key else None
    captioner = make_captioner(settings.caption_api_url, settings.caption_api_model, key)
    frames = [] if isinstance(captioner, BuiltinCaptioner) else _caption_frames(clip)
    draft = captioner.caption(facts, frames)
    rows = [
        drafts.CaptionDraftRow(CaptionLevel.clip, 0, "short", draft.short),
        drafts.CaptionDraftRow(CaptionLevel.clip, 0, "detailed", draft.detailed),
    ]
    # With no shot rows the captioner describes one implicit shot: it has no row to hang on.
    for shot, cap in zip(shot_rows, draft.shots, strict=False):
        rows.append(drafts.CaptionDraftRow(CaptionLevel.shot, shot.id, "narrative", cap.narrative))
        rows.append(
            drafts.CaptionDraftRow(CaptionLevel.shot, shot.id, "descriptive", cap.descriptive)
        )
    for (character, _), text in zip(characters, draft.characters, strict=True):
        rows.append(
            drafts.CaptionDraftRow(CaptionLevel.character, character.id, "appearance", text)
        )
    count = drafts.replace_model_captions(session, annotation, rows, draft.source)
    return {"captions": count, "captioner": draft.source, "fallback_reason": draft.fallback_reason}


def _has_audio(clip: Clip) -> bool:
    return clip.has_audio


@register_step("audio", applies=_has_audio)
def audio_step(session: Session, clip: Clip) -> dict[str, object]:
    """Speech activity segments of the clip's first audio stream."""
    segments = speech_segments(read_audio(source_path(clip)))
    count = drafts.replace_model_speech(session, drafts.model_annotation(session, clip), segments)
    return {"segments": count, "speech_s": round(sum(b - a for a, b in segments), 3)}
