"""What an export snapshot holds: the approved annotations a filter selects, read a few clips
at a time and written into a folder in every chosen format.

The reads run in one REPEATABLE READ transaction (a consistent view however long the build
takes), optionally read ahead on extra connections sharing its snapshot.
"""

from __future__ import annotations

import re
import shutil
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.agreement.models import AgreementRollup, AgreementScore
from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    NodeStatus,
    Revision,
    Shot,
    SpeechSegment,
    Track,
)
from app.auth.models import User
from app.batches.schemas import ClipFilter
from app.batches.service import matching_clips
from app.clips.models import Clip
from app.clips.paths import clip_store
from app.core.db import is_postgresql
from app.core.errors import Invalid
from app.export.card import CardWriter
from app.export.formats.bundle import (
    CharacterData,
    ClipBundle,
    FrameData,
    SnapshotContext,
    TrackData,
    clip_key,
    dumps,
    media_name,
    plain,
)
from app.export.formats.registry import MEDIA, WRITERS
from app.export.frames import IMAGE_FORMATS, FramesWriter, image_root
from app.export.labels import LabelRule
from app.export.models import ExportSnapshot
from app.export.options import ExportOptions
from app.export.splits import TRAIN, SplitClip, assign_splits, split_names
from app.projects.models import Project, SkeletonTemplate
from app.review.models import ReviewComment

CHUNK = 20  # clips read per round trip: bounds memory by a few clips' keypoints
# Without keypoint frames a clip is a few rows of metadata: read many per round trip.
METADATA_CHUNK = 500
SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")
NEEDS_FRAMES = frozenset(
    {
        "coco_wholebody",
        "coco_person",
        "openpose",
        "yolo",
        "cellabel",
        "pose_package",
        "face_video_package",
        "face_audio_package",
    }
)
Progress = Callable[[int, int], None]
# user-id columns -> the name they are exported under
USER_COLUMNS = {"updated_by_id": "updated_by", "annotator_id": "annotator", "user_id": "user",
                "author_id": "author", "annotator_a_id": "annotator_a",
                "annotator_b_id": "annotator_b"}  # fmt: skip


# --------------------------------------------------------------------------- selection


def _selection(
    session: Session, project_id: int, flt: ClipFilter, after: int = 0, up_to: int | None = None
) -> Select[int, int]:
    """(clip id, annotation id) of matching clips' approved primary annotations, for clips
    with ids above ``after`` (and at most ``up_to``)."""
    clips = matching_clips(session, project_id, flt)
    if not flt.limit:  # the keyset goes inside too, or every page rescans the clips before it
        clips = clips.where(Clip.id > after)
    if up_to is not None:
        clips = clips.where(Clip.id <= up_to)
    matching = clips.subquery()
    return (
        select(Annotation.clip_id, Annotation.id)
        .join(matching, matching.c.id == Annotation.clip_id)
        .where(
            Annotation.is_primary.is_(True),
            Annotation.status == NodeStatus.approved,
            Annotation.clip_id > after,
        )
    )


def _as_id_range(
    session: Session, project_id: int, flt: ClipFilter
) -> tuple[ClipFilter, int | None]:
    """``flt`` with its "first N clips" limit turned into an upper clip id, which pages can
    resume inside (a LIMIT would apply before every page's keyset)."""
    if not flt.limit:
        return flt, None
    first = matching_clips(session, project_id, flt).subquery()
    last_id = session.scalar(select(func.max(first.c.id)))
    return flt.model_copy(update={"limit": None}), int(last_id or 0)


def count_selected(session: Session, project_id: int, flt: ClipFilter) -> int:
    sub = _selection(session, project_id, flt).subquery()
    return int(session.scalar(select(func.count(func.distinct(sub.c.clip_id)))) or 0)


def split_clips(session: Session, project_id: int, flt: ClipFilter) -> list[SplitClip]:
    """What :func:`app.export.splits.assign_splits` needs of every selected clip."""
    flt, up_to = _as_id_range(session, project_id, flt)
    sel = _selection(session, project_id, flt, 0, up_to).subquery()
    first = (
        select(sel.c.clip_id, func.min(sel.c.id).label("annotation_id"))
        .group_by(sel.c.clip_id)
        .subquery()
    )
    rows = session.execute(
        select(Clip.id, Clip.content_hash, Clip.subsets, first.c.annotation_id)
        .join(first, first.c.clip_id == Clip.id)
        .order_by(Clip.id)
    ).all()
    kinds: dict[int, set[str]] = {}
    found = select(Character.annotation_id, Character.kind).join(
        first, first.c.annotation_id == Character.annotation_id
    )
    for annotation_id, kind in session.execute(found):
        kinds.setdefault(annotation_id, set()).add(str(plain(kind)))
    return [
        SplitClip(clip_id, clip_key({"content_hash": content_hash}), tuple(subsets or ()),
                  tuple(sorted(kinds.get(annotation_id, ()))))
        for clip_id, content_hash, subsets, annotation_id in rows
    ]  # fmt: skip


def _chunks(
    session: Session, project_id: int, flt: ClipFilter, size: int = CHUNK
) -> Iterator[list[tuple[int, int]]]:
    """Keyset pages of (clip id, annotation id); one annotation per clip (the lowest id)."""
    last = 0
    flt, up_to = _as_id_range(session, project_id, flt)
    while True:
        query = _selection(session, project_id, flt, last, up_to)
        order = (Annotation.clip_id, Annotation.id)
        rows = session.execute(query.order_by(*order).limit(size * 2)).all()
        if not rows:
            return
        page: dict[int, int] = {}
        for clip_id, annotation_id in rows:
            page.setdefault(clip_id, annotation_id)
        pairs = sorted(page.items())[:size]
        last = pairs[-1][0]
        yield pairs


# --------------------------------------------------------------------------- reading bundles


class _Reader:
    """Reads clips' annotations as plain rows (no ORM identity map grows during a build).

    On PostgreSQL a row arrives as one JSON document built by the server (``row_to_json``:
    timestamps already ISO strings, enums already strings), so the per-column decoding runs in
    PostgreSQL's process, beside the writing, instead of in this one; rows of tables with
    binary columns (keypoints) and SQLite rows are read column by column."""

    def __init__(self, session: Session, formats: Sequence[str], names: dict[int, str]) -> None:
        self.session = session
        self.formats = set(formats)
        self.names = names
        self.postgres = is_postgresql(session)
        if self.postgres:
            raw = session.connection().connection.dbapi_connection
            set_json_loads(orjson.loads, raw)  # type: ignore[arg-type]
            session.execute(text("SET LOCAL TIME ZONE 'UTC'"))  # ISO timestamps in UTC

    def rows(
        self, table: Any, column: str, ids: Sequence[int], *order: str
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        t: Table = table.__table__
        where, ordering = self._among(t.c[column], ids), [t.c[o] for o in order]
        users = [(c.name, USER_COLUMNS[c.name]) for c in t.c if c.name in USER_COLUMNS]
        if self.postgres and not any(isinstance(c.type, LargeBinary) for c in t.c):
            whole = func.row_to_json(t.table_valued())
            query = select(whole).where(where).order_by(*ordering)
            out: list[dict[str, Any]] = list(self.session.execute(query).scalars().all())
        else:
            result = self.session.execute(select(t).where(where).order_by(*ordering))
            keys = list(result.keys())
            out = [dict(zip(keys, values, strict=True)) for values in result.all()]
        names = self.names
        for row in out:
            for user_column, name in users:  # user ids are exported as usernames
                row[name] = names.get(row[user_column])
        return out

    def _among(self, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
        # PostgreSQL: one array parameter sent as its text form (the driver would adapt a
        # list item by item), so the statement is the same for every chunk.
        if self.postgres:
            array = "{" + ",".join(map(str, ids)) + "}"
            return column == any_(cast(bindparam("ids", array, type_=String), ARRAY(Integer)))
        return column.in_(ids)

    def bundles(self, pairs: list[tuple[int, int]]) -> list[ClipBundle]:
        clip_ids, ann_ids = [c for c, _ in pairs], [a for _, a in pairs]
        clips = {c["id"]: c for c in self.rows(Clip, "id", clip_ids, "id")}
        anns = {a["id"]: a for a in self.rows(Annotation, "id", ann_ids, "id")}
        bundles = {a: ClipBundle(clip=clips[c], annotation=anns[a]) for c, a in pairs}
        for shot in self.rows(Shot, "annotation_id", ann_ids, "start_frame", "id"):
            bundles[shot["annotation_id"]].shots.append(shot)
        characters: dict[int, CharacterData] = {}
        for ch in self.rows(Character, "annotation_id", ann_ids, "id"):
            data = CharacterData(
                id=ch["id"], name=ch["name"], kind=ch["kind"], skeleton=ch["skeleton"],
                reference_frame=ch["reference_frame"], emotions=ch["emotions"],
                source=ch["source"], status=ch["status"], version=ch["version"],
                updated_by=ch["updated_by"], drawing_runs=ch["drawing_runs"],
                timing=ch["timing"], tracks=[],
            )  # fmt: skip
            characters[ch["id"]] = data
            bundles[ch["annotation_id"]].characters.append(data)
        self._tracks(characters)
        for cap in self.rows(Caption, "annotation_id", ann_ids, "level", "target_id", "field"):
            bundles[cap["annotation_id"]].captions.append(cap)
        for seg in self.rows(SpeechSegment, "annotation_id", ann_ids, "start_s", "id"):
            bundles[seg["annotation_id"]].speech.append(seg)
        if "cellabel" in self.formats:
            for rev in self.rows(Revision, "annotation_id", ann_ids, "id"):
                bundles[rev["annotation_id"]].revisions.append(rev)
            for com in self.rows(ReviewComment, "annotation_id", ann_ids, "id"):
                bundles[com["annotation_id"]].comments.append(com)
        if "agreement" in self.formats:
            by_clip = {b.clip["id"]: b for b in bundles.values()}
            for score in self.rows(AgreementScore, "clip_id", clip_ids, "id"):
                by_clip[score["clip_id"]].agreement.append(_score(score))
        return [bundles[a] for _, a in pairs]

    def _tracks(self, characters: dict[int, CharacterData]) -> None:
        tracks: dict[int, TrackData] = {}
        for row in self.rows(Track, "character_id", list(characters), "id"):
            tracks[row["id"]] = _track(row)
            characters[row["character_id"]].tracks.append(tracks[row["id"]])
        if not (self.formats & NEEDS_FRAMES) or not tracks:
            return
        for f in self.rows(KeypointFrame, "track_id", list(tracks), "track_id", "frame_index"):
            tracks[f["track_id"]].frames.append(
                FrameData(
                    id=f["id"], frame_index=f["frame_index"], points=f["points"],
                    model_points=f["model_points"], is_keyframe=f["is_keyframe"],
                    part_valid=f["part_valid"], flags=list(f["flags"] or []),
                    version=f["version"], updated_by=f["updated_by"], box=f["box"],
                )
            )  # fmt: skip


def _track(row: dict[str, Any]) -> TrackData:
    return TrackData(
        id=row["id"], num_points=row["num_points"], source=row["source"],
        status=row["status"], version=row["version"], updated_by=row["updated_by"],
    )  # fmt: skip


def _score(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("level", "metric", "against", "annotator_a", "annotator_b", "value", "detail",
            "annotation_versions")  # fmt: skip
    return {k: row[k] for k in keep}


# --------------------------------------------------------------------------- writing


def project_header(session: Session, project: Project) -> dict[str, Any]:
    """The project's settings and custom skeletons, as the CelLabel format carries them."""
    skeletons = session.scalars(
        select(SkeletonTemplate)
        .where(SkeletonTemplate.project_id == project.id)
        .order_by(SkeletonTemplate.name)
    )
    fields = ("name", "description", "subsets", "tag_vocabulary", "emotion_labels",
              "rejection_reasons", "required_levels", "quality_thresholds", "caption_guide",
              "admin_acceptance", "agreement_threshold", "allow_free_tags",
              "keypoint_confidence_floor", "approved_model_points_count")  # fmt: skip
    return {
        **{f: getattr(project, f) for f in fields},
        "skeletons": [{"name": s.name, "definition": s.definition} for s in skeletons],
    }


def _agreement_summary(session: Session, project_id: int, names: dict[int, str]) -> list[Any]:
    rows = session.scalars(
        select(AgreementRollup)
        .where(AgreementRollup.project_id == project_id)
        .order_by(AgreementRollup.scope, AgreementRollup.scope_id, AgreementRollup.level,
                  AgreementRollup.metric, AgreementRollup.id)
    )  # fmt: skip
    return [
        {"scope": r.scope, "scope_id": r.scope_id, "level": r.level, "metric": r.metric,
         "value": r.value, "n": r.n,
         "annotator": names.get(r.scope_id or 0) if r.scope == "annotator" else None}
        for r in rows
    ]  # fmt: skip


def write_snapshot(
    session: Session,
    snapshot: ExportSnapshot,
    out: Path,
    progress: Progress | None = None,
    readers: int = 0,
) -> dict[str, int]:
    """Write the snapshot's formats into the empty folder ``out``; returns
    {annotation id: version} of what was exported.

    ``readers`` > 0 (PostgreSQL, ``session`` in a REPEATABLE READ transaction with nothing
    uncommitted) reads chunks ahead on that many extra connections sharing the session's
    snapshot, so the database work runs beside the writing."""
    project = session.get_one(Project, snapshot.project_id)
    flt = ClipFilter.model_validate(snapshot.filter)
    formats = tuple(snapshot.formats)
    users = list(session.scalars(select(User)))
    names = {u.id: u.username for u in users}
    roles = {u.username: u.role.value for u in users}
    options = ExportOptions.model_validate(snapshot.options or {})
    splits = assign_splits(split_clips(session, project.id, flt), options)
    ctx = SnapshotContext(
        name=snapshot.name,
        project=project_header(session, project),
        created_at=plain(snapshot.created_at),
        formats=formats,
        filter=dict(snapshot.filter),
        agreement_summary=tuple(_agreement_summary(session, project.id, names)),
        user_roles=roles,
        splits=split_names(options),
        image_root=image_root(formats),
        image_ext=options.image_ext,
    )
    writers = [WRITERS[f](out, ctx) for f in formats if f in WRITERS]
    label_rule = LabelRule.of_project(ctx.project)
    if options.frames and IMAGE_FORMATS & set(formats):
        writers.append(FramesWriter(out, ctx, options.jpeg_quality))
    writers.append(CardWriter(out, ctx, options))
    total = count_selected(session, project.id, flt)
    versions: dict[str, int] = {}
    frames = 0
    size = CHUNK if NEEDS_FRAMES & set(formats) else METADATA_CHUNK
    pages = _chunks(session, project.id, flt, size)
    with _snapshot_sessions(session, readers) as extra:
        if extra:
            chunks = read_ahead([_Reader(s, formats, names) for s in extra], pages)
        else:
            inline = _Reader(session, formats, names)
            chunks = (inline.bundles(pairs) for pairs in pages)
        for bundles in chunks:
            for bundle in bundles:
                bundle.label_rule = label_rule
                bundle.split = splits.get(bundle.clip["id"], TRAIN)
                bundle.store = clip_store(session, bundle.clip["source_id"])
                if MEDIA in formats:
                    bundle.media = _copy_media(bundle, out)
                for writer in writers:
                    writer.add(bundle)
                versions[str(bundle.annotation["id"])] = bundle.annotation["version"]
                frames += sum(len(t.frames) for _, _, t in bundle.tracks())
            if progress:
                progress(len(versions), total)
    for writer in writers:
        writer.close()
    summary = {"snapshot": snapshot.name, "project": project.name, "created_at": ctx.created_at,
               "formats": list(formats), "filter": ctx.filter, "clips": len(versions),
               "keypoint_frames": frames}  # fmt: skip
    (out / SNAPSHOT_FILE).write_text(dumps(summary) + "\n", encoding="utf-8")
    return versions


@contextmanager
def _snapshot_sessions(session: Session, count: int) -> Iterator[list[Session]]:
    """``count`` read-only sessions that see exactly what ``session`` sees (PostgreSQL's
    exported snapshots); none on other databases."""
    if count <= 0 or not is_postgresql(session):
        yield []
        return
    snapshot_id = str(session.scalar(text("SELECT pg_export_snapshot()")))
    if not SNAPSHOT_ID.fullmatch(snapshot_id):  # it is inlined: SET takes no parameters
        raise RuntimeError(f"Unexpected snapshot id {snapshot_id!r}.")
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    sessions: list[Session] = []
    try:
        for _ in range(count):
            connection = engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            sessions.append(Session(bind=connection))
            connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        yield sessions
    finally:
        for extra in sessions:
            connection = extra.connection()
            extra.close()
            connection.close()


def read_ahead(
    readers: list[_Reader], pages: Iterator[list[tuple[int, int]]]
) -> Iterator[list[ClipBundle]]:
    """The bundles of each page, in page order, page i read by reader i mod n on its own
    thread (each reader's session is only ever used by its one thread); at most two pages
    per reader are in flight, so memory stays bounded."""
    pools = [ThreadPoolExecutor(1, thread_name_prefix="export-reader") for _ in readers]
    window: deque[Future[list[ClipBundle]]] = deque()
    try:
        for i, pairs in enumerate(pages):
            n = i % len(readers)
            window.append(pools[n].submit(readers[n].bundles, pairs))
            if len(window) >= 2 * len(readers):
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for pending in window:
            pending.cancel()
        for pool in pools:
            pool.shutdown(wait=True)


def _copy_media(bundle: ClipBundle, out: Path) -> str:
    name = media_name(bundle.clip)
    try:
        source = bundle.source_file()
    except FileNotFoundError as exc:
        message = f"The file of clip {bundle.clip['id']} is missing; cannot copy its media."
        raise Invalid(message) from exc
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / name)
    return name
