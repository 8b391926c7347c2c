"""Export snapshots: choose approved annotations, build the archive in a worker, serve it.

A snapshot is created (row ``queued``) and built by the ``cellabel.export.build`` task (or
inline by the CLI in embedded mode). The build reads clips a few at a time in one
REPEATABLE READ transaction (a consistent view however long it takes), feeds every selected
format writer, zips the folder deterministically into ``exports/`` under MEDIA_ROOT and
records size, SHA-256 and the exported annotation versions. The archive is then immutable:
downloads stream the stored file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import ColumnElement, Integer, Select, Table, any_, bindparam, func, select, update
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
from app.core.db import session_scope, utcnow
from app.core.errors import Conflict, Invalid, NotFound
from app.core.jobs import enqueue
from app.core.storage import get_storage
from app.export.archive import sha256_of, zip_folder
from app.export.formats.bundle import (
    CharacterData,
    ClipBundle,
    FrameData,
    SnapshotContext,
    TrackData,
    dumps,
    media_name,
    plain,
)
from app.export.formats.registry import MEDIA, WRITERS
from app.export.models import ExportSnapshot
from app.export.schemas import ExportCreate
from app.projects.models import Project, SkeletonTemplate
from app.review.models import ReviewComment

log = logging.getLogger(__name__)

BUILD_TASK = "cellabel.export.build"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CHUNK = 20  # clips read per round trip: bounds memory by a few clips' keypoints
# Without keypoint frames a clip is a few rows of metadata: read many per round trip.
METADATA_CHUNK = 500
SNAPSHOT_FILE = "snapshot.json"
NEEDS_FRAMES = frozenset({"coco_wholebody", "coco_person", "openpose", "yolo", "cellabel"})
Progress = Callable[[int, int], None]
_JSON_TYPES = frozenset({str, int, float, bool, type(None), dict, list})
# user-id columns -> the name they are exported under
USER_COLUMNS = {"updated_by_id": "updated_by", "annotator_id": "annotator", "user_id": "user",
                "author_id": "author", "annotator_a_id": "annotator_a",
                "annotator_b_id": "annotator_b"}  # fmt: skip


# --------------------------------------------------------------------------- snapshots


def create_export(
    session: Session, data: ExportCreate, user: User | None, *, send: bool = True
) -> ExportSnapshot:
    """A queued snapshot; its build task is sent after commit (unless ``send`` is False)."""
    project = session.get(Project, data.project_id)
    if project is None:
        raise NotFound(f"No project {data.project_id}.")
    taken = select(ExportSnapshot.id).where(
        ExportSnapshot.project_id == project.id, ExportSnapshot.name == data.name
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"Project {project.name!r} already has a snapshot named {data.name!r}.")
    if count_selected(session, project.id, data.filter) == 0:
        raise Invalid("No clip matching this filter has an approved primary annotation yet.")
    snapshot = ExportSnapshot(
        project_id=project.id,
        name=data.name,
        formats=list(data.formats),
        filter=data.filter.model_dump(mode="json", exclude_defaults=True),
        state=QUEUED,
        created_by_id=user.id if user else None,
    )
    session.add(snapshot)
    session.flush()
    if send:
        enqueue(session, BUILD_TASK, snapshot.id)
    return snapshot


def list_exports(session: Session, project_id: int | None = None) -> list[ExportSnapshot]:
    query = select(ExportSnapshot).order_by(ExportSnapshot.id.desc())
    if project_id is not None:
        query = query.where(ExportSnapshot.project_id == project_id)
    return list(session.scalars(query))


def get_export(session: Session, snapshot_id: int) -> ExportSnapshot:
    snapshot = session.get(ExportSnapshot, snapshot_id)
    if snapshot is None:
        raise NotFound(f"No export {snapshot_id}.")
    return snapshot


def archive_path(snapshot: ExportSnapshot) -> Path:
    """The built zip of a finished snapshot (inside MEDIA_ROOT, checked by storage)."""
    if snapshot.state != DONE or not snapshot.storage_key:
        raise Conflict(f"Export {snapshot.name!r} is {snapshot.state}; it has no file yet.")
    path = get_storage().path(snapshot.storage_key)
    if not path.is_file():
        raise NotFound(f"The file of export {snapshot.name!r} is missing from storage.")
    return path


def download_name(session: Session, snapshot: ExportSnapshot) -> str:
    project = session.get_one(Project, snapshot.project_id)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in snapshot.name)
    return f"{project.name}-{safe}.zip"


# --------------------------------------------------------------------------- selection


def _selection(session: Session, project_id: int, flt: ClipFilter) -> Select[int, int]:
    """(clip id, annotation id) of matching clips' approved primary annotations."""
    matching = matching_clips(session, project_id, flt).subquery()
    return (
        select(Annotation.clip_id, Annotation.id)
        .join(matching, matching.c.id == Annotation.clip_id)
        .where(Annotation.is_primary.is_(True), Annotation.status == NodeStatus.approved)
    )


def count_selected(session: Session, project_id: int, flt: ClipFilter) -> int:
    sub = _selection(session, project_id, flt).subquery()
    return int(session.scalar(select(func.count(func.distinct(sub.c.clip_id)))) or 0)


def _chunks(
    session: Session, project_id: int, flt: ClipFilter, size: int = CHUNK
) -> Iterator[list[tuple[int, int]]]:
    """Keyset pages of (clip id, annotation id); one annotation per clip (the lowest id)."""
    last = 0
    query = _selection(session, project_id, flt).order_by(Annotation.clip_id, Annotation.id)
    while True:
        rows = session.execute(query.where(Annotation.clip_id > last).limit(size * 2)).all()
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
    """Reads clips' annotations as plain rows (no ORM identity map grows during a build)."""

    def __init__(self, session: Session, formats: Sequence[str]) -> None:
        self.session = session
        self.formats = set(formats)
        self.postgres = session.get_bind().dialect.name == "postgresql"
        if self.postgres:  # JSON columns of every row are decoded: use the fast decoder
            raw = session.connection().connection.dbapi_connection
            set_json_loads(orjson.loads, raw)  # type: ignore[arg-type]
        self.names = {u.id: u.username for u in session.scalars(select(User))}

    def clean(self, keys: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        # Most values are JSON already; only enums and datetimes need plain().
        pairs = zip(keys, row, strict=True)
        out = {k: v if type(v) in _JSON_TYPES else plain(v) for k, v in pairs}
        for column, name in USER_COLUMNS.items():
            if column in out:
                out[name] = self.names.get(out[column]) if out[column] is not None else None
        return out

    def rows(
        self, table: Any, column: str, ids: Sequence[int], *order: str
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        t: Table = table.__table__
        query = select(t).where(self._among(t.c[column], ids)).order_by(*(t.c[o] for o in order))
        result = self.session.execute(query)
        keys = list(result.keys())
        return [self.clean(keys, r) for r in result.all()]

    def _among(self, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
        # PostgreSQL: one array parameter, so the statement text (and its parsing by the
        # driver) is the same for every chunk; IN (...) would have one parameter per id.
        if self.postgres:
            return column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
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
                updated_by=ch["updated_by"], tracks=[],
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
                    version=f["version"], updated_by=f["updated_by"],
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


# --------------------------------------------------------------------------- building


def project_header(session: Session, project: Project) -> dict[str, Any]:
    """The project's settings and custom skeletons, as the CelLabel format carries them."""
    skeletons = session.scalars(
        select(SkeletonTemplate)
        .where(SkeletonTemplate.project_id == project.id)
        .order_by(SkeletonTemplate.name)
    )
    fields = ("name", "description", "subsets", "tag_vocabulary", "emotion_labels",
              "rejection_reasons", "required_levels", "quality_thresholds", "caption_guide",
              "admin_acceptance", "agreement_threshold")  # fmt: skip
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


@dataclass
class BuildResult:
    storage_key: str
    size_bytes: int
    sha256: str
    annotation_versions: dict[str, int]


def write_snapshot(
    session: Session, snapshot: ExportSnapshot, out: Path, progress: Progress | None = None
) -> dict[str, int]:
    """Write the snapshot's formats into the empty folder ``out``; returns
    {annotation id: version} of what was exported."""
    project = session.get_one(Project, snapshot.project_id)
    flt = ClipFilter.model_validate(snapshot.filter)
    formats = tuple(snapshot.formats)
    reader = _Reader(session, formats)
    roles = {u.username: u.role.value for u in session.scalars(select(User))}
    ctx = SnapshotContext(
        name=snapshot.name,
        project=project_header(session, project),
        created_at=plain(snapshot.created_at),
        formats=formats,
        filter=dict(snapshot.filter),
        agreement_summary=tuple(_agreement_summary(session, project.id, reader.names)),
        user_roles=roles,
    )
    writers = [WRITERS[f](out, ctx) for f in formats if f in WRITERS]
    total = count_selected(session, project.id, flt)
    versions: dict[str, int] = {}
    frames = 0
    size = CHUNK if NEEDS_FRAMES & set(formats) else METADATA_CHUNK
    for pairs in _chunks(session, project.id, flt, size):
        for bundle in reader.bundles(pairs):
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


def _copy_media(bundle: ClipBundle, out: Path) -> str:
    name = media_name(bundle.clip)
    source = get_storage().path(bundle.clip["storage_key"])
    if not source.is_file():
        raise Invalid(f"The file of clip {bundle.clip['id']} is missing; cannot copy its media.")
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / name)
    return name


def build_archive(
    session: Session, snapshot: ExportSnapshot, progress: Progress | None = None
) -> BuildResult:
    """Write the snapshot into a staging folder and zip it into storage (not recorded yet)."""
    storage = get_storage()
    exports = storage.path("exports")
    exports.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=exports, prefix=".staging-"))
    try:
        versions = write_snapshot(session, snapshot, staging, progress)
        key = f"exports/{snapshot.project_id}/{snapshot.id}/snapshot.zip"
        target = storage.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(".part-snapshot.zip")
        zip_folder(staging, part)
        os.replace(part, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(key, target.stat().st_size, sha256_of(target), versions)


def record_result(snapshot: ExportSnapshot, result: BuildResult) -> None:
    snapshot.state = DONE
    snapshot.progress = 1.0
    snapshot.storage_key = result.storage_key
    snapshot.size_bytes = result.size_bytes
    snapshot.sha256 = result.sha256
    snapshot.annotation_versions = result.annotation_versions
    snapshot.error = None
    snapshot.finished_at = utcnow()


def build_now(session: Session, snapshot: ExportSnapshot) -> ExportSnapshot:
    """Build and record in the caller's transaction (tests, small scripts)."""
    record_result(snapshot, build_archive(session, snapshot))
    session.flush()
    return snapshot


def claim(session: Session, snapshot_id: int) -> bool:
    """Atomically move a queued snapshot to running; False if someone else has it."""
    result = session.execute(
        update(ExportSnapshot)
        .where(ExportSnapshot.id == snapshot_id, ExportSnapshot.state == QUEUED)
        .values(state=RUNNING, progress=0.0)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _progress_recorder(snapshot_id: int, also: Progress | None) -> Progress:
    last = [-1.0]

    def record(done: int, total: int) -> None:
        fraction = round(done / total, 2) if total else 1.0
        if also:
            also(done, total)
        if fraction != last[0]:
            last[0] = fraction
            with session_scope() as s:
                s.execute(
                    update(ExportSnapshot)
                    .where(ExportSnapshot.id == snapshot_id)
                    .values(progress=min(fraction, 0.99))
                )

    return record


def run_build(snapshot_id: int, on_progress: Progress | None = None) -> str:
    """The task body: claim, build in a consistent read, record; returns the final state."""
    with session_scope() as session:
        if not claim(session, snapshot_id):
            found = session.get(ExportSnapshot, snapshot_id)
            return found.state if found else "missing"
    try:
        with session_scope() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            snapshot = session.get_one(ExportSnapshot, snapshot_id)
            result = build_archive(session, snapshot, _progress_recorder(snapshot_id, on_progress))
        with session_scope() as session:
            record_result(session.get_one(ExportSnapshot, snapshot_id), result)
    except Exception as exc:
        log.exception("export %s failed", snapshot_id)
        with session_scope() as session:
            snapshot = session.get_one(ExportSnapshot, snapshot_id)
            snapshot.state = FAILED
            snapshot.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            snapshot.finished_at = utcnow()
        return FAILED
    return DONE
