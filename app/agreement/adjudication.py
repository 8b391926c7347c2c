"""Adjudication: settle a clip whose annotators disagree by picking or merging their versions.

The adjudicator (a reviewer or admin who annotated none of the versions) chooses, per level,
whose shots, clip captions, tags (or their 2-of-3 majority), quality decision and speech to
keep, and per character: one version's track, the mean of all versions' points, or nothing.
The result is a new Annotation of kind ``adjudicated``: it is the clip's primary annotation
and is approved at once (the adjudicator is staff, so it needs no second review), every node
in it is approved, and Revision rows (action ``adjudicate``) record which version each node
came from. The annotators' own versions are left as they are, for the record and agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.agreement.compare import AnnotationView, CharacterView, majority_tags, match_characters
from app.agreement.models import AgreementScore
from app.agreement.recompute import CLIP_SCORE
from app.agreement.schemas import AdjudicationChoice, CharacterTake
from app.agreement.versions import annotation_view, gold_reference, human_versions
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
    SpeechSegment,
    Track,
)
from app.annotations.points import encode_points
from app.auth.models import User
from app.clips.models import Clip
from app.clips.paths import frames_ready
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, Invalid, NotFound
from app.core.textdiff import word_diff
from app.projects.models import Project
from app.projects.skeletons import BUILTIN_SKELETONS, PoseArray, V, X, Y

COLOURS = ("#e4572e", "#2e86de", "#17a398", "#9b59b6", "#f1c40f")
APPROVED = NodeStatus.approved


# ---------------------------------------------------------------- pure helpers


@dataclass
class CharacterGroup:
    """The same character in several versions (matched like agreement matches them)."""

    index: int
    skeleton: str
    name: str
    members: dict[int, CharacterView] = field(default_factory=dict)  # annotation id -> character


def character_groups(views: Sequence[AnnotationView]) -> list[CharacterGroup]:
    """Group characters across versions: each version is matched against the groups so far
    (their first member) by skeleton and box IoU; the unmatched open new groups."""
    groups: list[CharacterGroup] = []
    for view in views:
        firsts = [next(iter(g.members.values())) for g in groups]
        by_first = {id(c): g for c, g in zip(firsts, groups, strict=True)}
        for first, mine, _ in match_characters(firsts, view.characters):
            if mine is None:
                continue
            if first is None:
                group = CharacterGroup(len(groups), mine.skeleton, mine.name)
                groups.append(group)
            else:
                group = by_first[id(first)]
            group.members[view.id] = mine
    return groups


def mean_pose(poses: Sequence[PoseArray]) -> PoseArray:
    """Per point, the mean position over the poses that label it, visible if any saw it so."""
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in poses])
    labelled = stack[:, :, V] > 0
    counts = labelled.sum(axis=0)
    out = np.zeros(stack.shape[1:], dtype=np.float32)
    has = counts > 0
    for axis in (X, Y):
        total = np.where(labelled, stack[:, :, axis], 0.0).sum(axis=0)
        out[has, axis] = total[has] / counts[has]
    out[:, V] = np.where(labelled, stack[:, :, V], 0).max(axis=0)
    out[has, 3] = 1.0
    return out


# ---------------------------------------------------------------- the page


@dataclass
class Version:
    letter: str
    colour: str
    annotation: Annotation
    annotator: str
    view: AnnotationView


@dataclass
class Overlay:
    """One version's points of one character on the shown frame, ready for SVG."""

    letter: str
    colour: str
    group: int
    points: list[tuple[float, float, int]]
    edges: list[tuple[float, float, float, float]]


@dataclass
class CaptionCompare:
    key: str
    texts: list[tuple[str, str, str]]  # letter, colour, text
    diff: list[tuple[str, str]]  # first two versions


@dataclass
class AdjudicationPage:
    clip: Clip
    project: Project
    versions: list[Version]
    groups: list[CharacterGroup]
    frame: int
    overlays: list[Overlay]
    captions: list[CaptionCompare]
    score: AgreementScore | None
    majority: dict[str, Any]
    done: Annotation | None
    frames_ready: bool  # the frame cache exists, so the overlay can show the picture


def _overlays(
    versions: Sequence[Version], groups: Sequence[CharacterGroup], frame: int
) -> list[Overlay]:
    out: list[Overlay] = []
    for group in groups:
        skeleton = BUILTIN_SKELETONS.get(group.skeleton)
        for version in versions:
            char = group.members.get(version.annotation.id)
            pose = char.frames.get(frame) if char else None
            if pose is None:
                continue
            points = [(float(p[X]), float(p[Y]), int(p[V])) for p in pose]
            edges = [
                (points[i][0], points[i][1], points[j][0], points[j][1])
                for i, j in (skeleton.edges if skeleton else ())
                if i < len(points) and j < len(points) and points[i][2] and points[j][2]
            ]
            labelled = [p for p in points if p[2] > 0]
            out.append(Overlay(version.letter, version.colour, group.index, labelled, edges))
    return out


def _captions(versions: Sequence[Version]) -> list[CaptionCompare]:
    keys = sorted({k for v in versions for k in v.view.captions})
    out = []
    for key in keys:
        texts = [(v.letter, v.colour, v.view.captions.get(key, "")) for v in versions]
        diff = word_diff(texts[0][2], texts[1][2]) if len(texts) > 1 else []
        out.append(CaptionCompare(key, texts, diff))
    return out


def _versions(session: Session, clip_id: int) -> list[Version]:
    annotations = human_versions(session, clip_id)
    gold = gold_reference(session, clip_id)
    annotations = [a for a in annotations if gold is None or a.id != gold.id]
    ids = {a.annotator_id for a in annotations if a.annotator_id is not None}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    return [
        Version(
            chr(ord("A") + i),
            COLOURS[i % len(COLOURS)],
            a,
            names.get(a.annotator_id or 0, "?"),
            annotation_view(session, a),
        )
        for i, a in enumerate(annotations)
    ]


def _adjudicated(session: Session, clip_id: int) -> Annotation | None:
    return session.scalar(
        select(Annotation).where(
            Annotation.clip_id == clip_id,
            Annotation.kind == AnnotationKind.adjudicated,
            Annotation.status == APPROVED,
        )
    )


def adjudication_page(session: Session, clip_id: int, frame: int | None = None) -> AdjudicationPage:
    """Everything the side-by-side page shows for one clip and one frame."""
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"No clip {clip_id}.")
    versions = _versions(session, clip_id)
    groups = character_groups([v.view for v in versions])
    last = max((clip.frame_count or 1) - 1, 0)
    if frame is None:  # the first frame anybody labelled
        labelled = [f for g in groups for c in g.members.values() for f in c.frames]
        frame = min(labelled) if labelled else 0
    frame = min(max(frame, 0), last)
    score = session.scalar(
        select(AgreementScore).where(
            AgreementScore.clip_id == clip_id,
            AgreementScore.level == CLIP_SCORE[0],
            AgreementScore.metric == CLIP_SCORE[1],
        )
    )
    return AdjudicationPage(
        clip=clip,
        project=session.get_one(Project, clip.project_id),
        versions=versions,
        groups=groups,
        frame=frame,
        overlays=_overlays(versions, groups, frame),
        captions=_captions(versions),
        score=score,
        majority=majority_tags([v.view for v in versions]) if len(versions) > 2 else {},
        done=_adjudicated(session, clip_id),
        frames_ready=frames_ready(clip),
    )


# ---------------------------------------------------------------- adjudicating


class _Builder:
    """Copies the picked nodes into the adjudicated annotation, with a Revision for each."""

    def __init__(self, session: Session, user: User, target: Annotation) -> None:
        self.session, self.user, self.target = session, user, target

    def record(
        self, node_type: str, node_id: int, after: dict[str, Any], comment: str = ""
    ) -> None:
        self.session.add(
            Revision(
                annotation_id=self.target.id, node_type=node_type, node_id=node_id, version=1,
                action="adjudicate", source=Source.human, user_id=self.user.id, before=None,
                after=after, comment=comment or None,
            )
        )  # fmt: skip

    def add(self, node: Any) -> Any:
        node.status = APPROVED
        node.updated_by_id = self.user.id
        self.session.add(node)
        self.session.flush()
        return node

    def shots(self, source: int) -> dict[int, int]:
        """Copy the source's shots; returns start frame -> new shot id."""
        starts: dict[int, int] = {}
        for shot in self.session.scalars(
            select(Shot).where(Shot.annotation_id == source).order_by(Shot.start_frame)
        ):
            copy = self.add(
                Shot(annotation_id=self.target.id, start_frame=shot.start_frame,
                     end_frame=shot.end_frame, camera_motion=shot.camera_motion, source=shot.source)
            )  # fmt: skip
            starts[shot.start_frame] = copy.id
            self.record("shot", copy.id, {"from_annotation": source, "from_node": shot.id})
        return starts

    def caption(self, cap: Caption, target_id: int, source: int) -> None:
        copy = self.add(
            Caption(annotation_id=self.target.id, level=cap.level, target_id=target_id,
                    field=cap.field, text=cap.text, model_text=cap.model_text,
                    model_name=cap.model_name)
        )  # fmt: skip
        self.record("caption", copy.id, {"from_annotation": source, "from_node": cap.id})

    def captions(self, source: int, shots_source: int, shot_ids: dict[int, int]) -> None:
        """Clip captions from ``source``; each shot's captions from ``source`` when it has a
        shot starting on the same frame, else from the version the shots came from."""
        rows = self.session.scalars(
            select(Caption).where(Caption.annotation_id.in_({source, shots_source}))
        ).all()
        starts = dict(
            self.session.execute(
                select(Shot.id, Shot.start_frame).where(
                    Shot.annotation_id.in_({source, shots_source})
                )
            ).all()
        )
        with_text = {starts[c.target_id] for c in rows
                     if c.level == CaptionLevel.shot and c.annotation_id == source
                     and c.target_id in starts}  # fmt: skip
        for cap in rows:
            if cap.level == CaptionLevel.clip and cap.annotation_id == source:
                self.caption(cap, 0, source)
            elif cap.level == CaptionLevel.shot and cap.target_id in starts:
                start = starts[cap.target_id]
                wanted = source if start in with_text else shots_source
                if cap.annotation_id == wanted and start in shot_ids:
                    self.caption(cap, shot_ids[start], wanted)

    def character(self, group: CharacterGroup, take: CharacterTake) -> None:
        first_id = next(iter(group.members))
        source = first_id if take == "mean" else int(take)
        picked = self.session.get_one(Character, group.members[source].id)
        char = self.add(
            Character(annotation_id=self.target.id, name=picked.name, kind=picked.kind,
                      skeleton=picked.skeleton, reference_frame=picked.reference_frame,
                      emotions=list(picked.emotions), source=picked.source,
                      drawing_runs=list(picked.drawing_runs), timing=picked.timing)
        )  # fmt: skip
        track = self.session.scalar(
            select(Track).where(Track.character_id == picked.id).order_by(Track.id).limit(1)
        )
        if track is not None:
            copy = self.add(
                Track(character_id=char.id, num_points=track.num_points, source=track.source)
            )
            if take == "mean":
                self._mean_frames(copy, group)
            else:
                self._copy_frames(copy, track)
        for cap in self.session.scalars(
            select(Caption).where(
                Caption.annotation_id == source,
                Caption.level == CaptionLevel.character,
                Caption.target_id == picked.id,
            )
        ):
            self.caption(cap, char.id, source)
        after: dict[str, Any] = (
            {"mean_of": {str(a): c.id for a, c in group.members.items()}}
            if take == "mean"
            else {"from_annotation": source, "from_node": picked.id}
        )
        self.record("character", char.id, {**after, "group": group.index})

    def _copy_frames(self, target: Track, track: Track) -> None:
        for row in self.session.scalars(
            select(KeypointFrame).where(KeypointFrame.track_id == track.id)
        ):
            self.session.add(
                KeypointFrame(track_id=target.id, frame_index=row.frame_index, points=row.points,
                              model_points=row.model_points, is_keyframe=row.is_keyframe,
                              part_valid=row.part_valid, flags=list(row.flags), version=1)
            )  # fmt: skip

    def _mean_frames(self, target: Track, group: CharacterGroup) -> None:
        members = [c for c in group.members.values() if c.num_points == target.num_points]
        for frame in sorted({f for c in members for f in c.frames}):
            poses = [c.frames[frame] for c in members if frame in c.frames]
            blob = encode_points(mean_pose(poses), np.ones(target.num_points, dtype=bool))
            self.session.add(
                KeypointFrame(
                    track_id=target.id, frame_index=frame, points=blob, flags=[], version=1
                )
            )

    def speech(self, source: int) -> None:
        for seg in self.session.scalars(
            select(SpeechSegment).where(SpeechSegment.annotation_id == source)
        ):
            copy = self.add(
                SpeechSegment(annotation_id=self.target.id, start_s=seg.start_s, end_s=seg.end_s,
                              transcript=seg.transcript, source=seg.source)
            )  # fmt: skip
            self.record("speech_segment", copy.id, {"from_annotation": source, "from_node": seg.id})


def adjudicate(
    session: Session, user: User, clip_id: int, choice: AdjudicationChoice
) -> Annotation:
    """Build, approve and make primary the clip's adjudicated annotation from ``choice``."""
    clip = session.get(Clip, clip_id, with_for_update=True)  # one adjudication at a time
    if clip is None:
        raise NotFound(f"No clip {clip_id}.")
    versions = _versions(session, clip_id)
    if len(versions) < 2:
        raise Invalid("Adjudication needs at least two submitted versions of the clip.")
    if any(v.annotation.annotator_id == user.id for v in versions):
        raise Forbidden("You annotated this clip; another reviewer must adjudicate it.")
    if session.scalar(
        select(
            exists().where(
                Annotation.clip_id == clip_id, Annotation.kind == AnnotationKind.adjudicated
            )
        )
    ):
        raise Conflict("This clip was already adjudicated.")
    views = {v.annotation.id: v.view for v in versions}
    first = versions[0].annotation.id

    def pick(level: str) -> int:
        value = getattr(choice, level)
        source = first if value is None else value
        if source not in views:
            raise Invalid(f"{level}: annotation {source} is not one of this clip's versions.")
        return int(source)

    picks: dict[str, Any] = {
        level: pick(level) for level in ("shots", "captions", "quality", "speech")
    }
    if choice.tags == "majority":
        tags = {**views[first].tags, **majority_tags(list(views.values()))}
        picks["tags"] = "majority"
    else:
        picks["tags"] = pick("tags")
        tags = dict(views[picks["tags"]].tags)
    now = utcnow()
    target = Annotation(
        clip_id=clip_id, kind=AnnotationKind.adjudicated, annotator_id=user.id, is_primary=True,
        status=APPROVED, tags=tags, quality=dict(views[picks["quality"]].quality),
        timing=versions[0].annotation.timing, submitted_at=now, approved_at=now,
        updated_by_id=user.id,
    )  # fmt: skip
    for other in session.scalars(
        select(Annotation).where(Annotation.clip_id == clip_id, Annotation.is_primary.is_(True))
    ):
        other.is_primary = False
    session.add(target)
    session.flush()
    build = _Builder(session, user, target)
    shot_ids = build.shots(picks["shots"])
    build.captions(picks["captions"], picks["shots"], shot_ids)
    groups = character_groups(list(views.values()))
    takes: dict[int, CharacterTake] = {}
    for group in groups:
        take = choice.characters.get(group.index, first if first in group.members else "mean")
        if take not in ("mean", "drop") and take not in group.members:
            raise Invalid(f"Character group {group.index}: version {take} has no such character.")
        takes[group.index] = take
        if take != "drop":
            build.character(group, take)
    build.speech(picks["speech"])
    build.record(
        "annotation",
        target.id,
        {
            "sources": list(views),
            "picks": picks,
            "characters": {str(k): v for k, v in takes.items()},
        },
        choice.comment,
    )
    session.flush()
    return target
