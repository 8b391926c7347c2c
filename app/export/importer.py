"""Imports: a CelLabel snapshot back into a project (round trip), COCO-WholeBody files as
model drafts, and captions JSONL into the primary or the model annotation.

A CelLabel import reads ``cellabel.jsonl`` twice, one line at a time (first the header and
the users line, then the clips), so its memory does not grow with the snapshot. Clips are
matched by content hash: a clip the project already holds is reused; a new clip needs its
file in the snapshot (export with the ``media`` format), which is copied into storage and
checked against the recorded hash. Accounts named in the snapshot and missing here are
created disabled (an admin enables them and sets a password).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

from sqlalchemy import Enum, Table, select
from sqlalchemy.orm import Session

from app.annotations import drafts
from app.annotations.models import (
    Annotation,
    Caption,
    CaptionLevel,
    Character,
    KeypointFrame,
    Revision,
    Shot,
    Source,
    SpeechSegment,
    Track,
)
from app.auth import service as auth_service
from app.auth.models import Role
from app.clips.models import Clip, ClipState
from app.core.db import UTCDateTime
from app.core.errors import Invalid
from app.core.storage import clip_prefix, get_storage
from app.export.formats.captions import CAPTIONS_FILE
from app.export.formats.cellabel import FORMAT, FORMAT_VERSION, unb64
from app.export.formats.coco import WHOLEBODY_FILE, images_of_clip
from app.export.formats.manifests import CELLABEL_FILE
from app.export.schemas import ImportReport
from app.pipeline.service import queue_pipeline
from app.projects import service as project_service
from app.projects.models import Project, SkeletonTemplate, Subset
from app.review.models import ReviewComment

IMPORT_FORMATS = ("cellabel", "coco_wholebody", "captions")
PROJECT_SETTINGS = ("tag_vocabulary", "emotion_labels", "rejection_reasons", "required_levels",
                    "quality_thresholds", "caption_guide", "admin_acceptance",
                    "agreement_threshold", "allow_free_tags", "keypoint_confidence_floor",
                    "approved_model_points_count")  # fmt: skip


class SnapshotSource:
    """A snapshot as a zip, a folder, or one of its files given directly."""

    def __init__(self, path: Path, main: str) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.base = path
        self.main = main
        if path.is_file() and zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
        elif path.is_file():
            self.base, self.main = path.parent, path.name
        elif not path.is_dir():
            raise Invalid(f"{path} is neither a snapshot zip, a folder nor a file.")

    @staticmethod
    def _checked(name: str) -> str:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not name.strip():
            raise Invalid(f"The snapshot names a file outside itself: {name!r}.")
        return name

    def has(self, name: str) -> bool:
        name = self._checked(name)
        if self.zip is not None:
            try:
                self.zip.getinfo(name)
            except KeyError:
                return False
            return True
        return (self.base / name).is_file()

    def open(self, name: str) -> IO[bytes]:
        name = self._checked(name)
        if not self.has(name):
            raise Invalid(f"The snapshot has no {name}.")
        return self.zip.open(name) if self.zip is not None else (self.base / name).open("rb")

    def lines(self) -> Iterator[dict[str, Any]]:
        """The main file's JSON lines, one at a time."""
        with self.open(self.main) as raw:
            for n, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise Invalid(f"{self.main} line {n} is not JSON: {exc.msg}.") from exc

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


@contextmanager
def open_snapshot(path: Path, main: str) -> Iterator[SnapshotSource]:
    source = SnapshotSource(path, main)
    try:
        yield source
    finally:
        source.close()


def _coerce(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Exported JSON values back to column values (enum members, datetimes)."""
    table = model.__table__
    out = dict(row)
    for key, value in row.items():
        if value is None:
            continue
        kind = table.c[key].type
        if isinstance(kind, Enum) and kind.enum_class is not None:
            out[key] = kind.enum_class(value)
        elif isinstance(kind, UTCDateTime) and isinstance(value, str):
            out[key] = datetime.fromisoformat(value)
    return out


def _insert(session: Session, model: Any, row: dict[str, Any]) -> int:
    """Insert through the table (keeps the exported ``version``, which the ORM would reset)."""
    table = model.__table__
    return int(
        session.execute(
            table.insert().values(**_coerce(model, row)).returning(table.c.id)
        ).scalar_one()
    )


# --------------------------------------------------------------------------- CelLabel


def _project(session: Session, name: str, header: dict[str, Any]) -> Project:
    existing = session.scalar(select(Project).where(Project.name == name))
    if existing is not None:
        return existing
    settings = header["project"]
    project = project_service.create_project(
        session, name, [Subset(s) for s in settings["subsets"]], settings.get("description", "")
    )
    for field in PROJECT_SETTINGS:
        if field in settings:
            setattr(project, field, settings[field])
    for skeleton in settings.get("skeletons", []):
        definition = project_service.validate_skeleton(skeleton["definition"])
        session.add(SkeletonTemplate(project_id=project.id, name=definition["name"],
                                     definition=definition))  # fmt: skip
    session.flush()
    return project


def _users(session: Session, users: list[dict[str, Any]], report: ImportReport) -> dict[str, int]:
    ids: dict[str, int] = {}
    for entry in users:
        name = str(entry["username"])
        user = auth_service.get_user_by_name(session, name)
        if user is None:
            user = auth_service.create_user(
                session, name, secrets.token_urlsafe(24), Role(entry["role"])
            )
            user.is_active = False
            report.users_created.append(name)
        ids[name] = user.id
    session.flush()
    return ids


class _ClipImport:
    """Inserts one clip record's annotation and nodes, translating positions to new ids."""

    def __init__(self, session: Session, users: dict[str, int], clip_id: int) -> None:
        self.session, self.users, self.clip_id = session, users, clip_id
        self.ids: dict[str, Any] = {}

    def user(self, name: str | None) -> int | None:
        if name is None:
            return None
        if name not in self.users:
            raise Invalid(f"The snapshot refers to user {name!r} but does not list them.")
        return self.users[name]

    def node(self, record: dict[str, Any], *names: str) -> dict[str, Any]:
        row = {k: v for k, v in record.items() if k in names}
        row["updated_by_id"] = self.user(record.get("updated_by"))
        return row

    def resolve(self, node_type: str, ref: Any) -> int:
        """New id of a node referenced by position (0 for nodes the snapshot does not hold)."""
        if ref is None:
            return 0
        try:
            if node_type == "track":
                return int(self.ids["track"][tuple(ref)])
            if node_type == "keypoint_frame":
                return int(self.ids["keypoint_frame"][(*ref[:2], ref[2])])
            return int(self.ids[node_type][ref])
        except (KeyError, IndexError, TypeError) as exc:
            raise Invalid(f"A {node_type} reference {ref!r} points at nothing.") from exc

    def run(self, rec: dict[str, Any], primary: bool) -> None:
        s, a = self.session, rec["annotation"]
        ann = self.node(a, "kind", "status", "version", "tags", "quality", "timing",
                        "submitted_at", "approved_at", "created_at")  # fmt: skip
        ann.update(clip_id=self.clip_id, annotator_id=self.user(a["annotator"]), is_primary=primary)
        ann_id = _insert(s, Annotation, ann)
        self.ids["annotation"] = {0: ann_id}
        node_fields = ("source", "status", "version")
        self.ids["shot"] = [
            _insert(s, Shot, {**self.node(r, "start_frame", "end_frame", "camera_motion",
                                          *node_fields), "annotation_id": ann_id})
            for r in rec["shots"]
        ]  # fmt: skip
        self.ids["character"], self.ids["track"], self.ids["keypoint_frame"] = [], {}, {}
        for ci, ch in enumerate(rec["characters"]):
            row = self.node(ch, "name", "kind", "skeleton", "reference_frame", "emotions",
                            "drawing_runs", "timing", *node_fields)  # fmt: skip
            char_id = _insert(s, Character, {**row, "annotation_id": ann_id})
            self.ids["character"].append(char_id)
            for ti, tr in enumerate(ch["tracks"]):
                row = self.node(tr, "num_points", *node_fields)
                track_id = _insert(s, Track, {**row, "character_id": char_id})
                self.ids["track"][(ci, ti)] = track_id
                self._frames(ci, ti, track_id, tr["frames"])
        targets = {"clip": lambda i: 0, "shot": lambda i: self.ids["shot"][i],
                   "character": lambda i: self.ids["character"][i]}  # fmt: skip
        self.ids["caption"] = [
            _insert(s, Caption, {
                **self.node(c, "level", "field", "text", "model_text", "model_name", "status",
                            "version"),
                "annotation_id": ann_id, "target_id": targets[c["level"]](c["target"]),
            })
            for c in rec["captions"]
        ]  # fmt: skip
        self.ids["speech_segment"] = [
            _insert(s, SpeechSegment, {**self.node(r, "start_s", "end_s", "transcript",
                                                   *node_fields), "annotation_id": ann_id})
            for r in rec["speech"]
        ]  # fmt: skip
        for r in rec["revisions"]:
            row = {k: r[k] for k in ("node_type", "version", "action", "source", "before",
                                     "after", "comment", "created_at")}  # fmt: skip
            row.update(annotation_id=ann_id, user_id=self.user(r["user"]),
                       node_id=self.resolve(r["node_type"], r["node"]))  # fmt: skip
            _insert(s, Revision, row)
        comment_ids: list[int] = []
        for c in rec["comments"]:
            row = {k: c[k] for k in ("node_type", "frame_index", "point_index", "region",
                                     "reason", "body", "resolved", "created_at")}  # fmt: skip
            parent = None if c["parent"] is None else comment_ids[c["parent"]]
            node_id = self.resolve(c["node_type"], c["node"])
            row.update(annotation_id=ann_id, author_id=self.user(c["author"]), node_id=node_id,
                       parent_id=parent)  # fmt: skip
            comment_ids.append(_insert(s, ReviewComment, row))

    def _frames(self, ci: int, ti: int, track_id: int, frames: list[dict[str, Any]]) -> None:
        if not frames:
            return
        rows = [
            {"track_id": track_id, "frame_index": f["frame"], "points": unb64(f["points"]),
             "model_points": unb64(f["model_points"]), "is_keyframe": f["keyframe"],
             "part_valid": f["part_valid"], "flags": f["flags"], "version": f["version"],
             "updated_by_id": self.user(f["updated_by"]), "box": f.get("box")}
            for f in frames
        ]  # fmt: skip
        table = cast(Table, KeypointFrame.__table__)
        result = self.session.execute(
            table.insert().returning(table.c.id, table.c.frame_index), rows
        )
        for frame_id, frame_index in result.all():
            self.ids["keypoint_frame"][(ci, ti, frame_index)] = frame_id


def _new_clip(
    session: Session, project: Project, c: dict[str, Any], src: SnapshotSource
) -> Clip | None:
    media = c.get("media")
    if not media or not src.has(media):
        return None
    fields = {k: v for k, v in c.items() if k != "media"}
    clip = Clip(project_id=project.id, storage_key="", state=ClipState.ready, **fields)
    session.add(clip)
    session.flush()
    clip.storage_key = f"{clip_prefix(project.id, clip.id)}/source{Path(media).suffix}"
    with src.open(media) as fh:
        _, digest = get_storage().save_stream(clip.storage_key, cast(BinaryIO, fh))
    if digest != clip.content_hash:
        get_storage().delete_tree(clip.storage_key)
        raise Invalid(f"{media} does not match the content hash recorded for {c['filename']}.")
    return clip


def import_cellabel(
    session: Session, project_name: str, path: Path, *, rebuild_frames: bool = True
) -> ImportReport:
    """Import a CelLabel snapshot (zip, folder or ``cellabel.jsonl``) into a project, creating
    the project from the snapshot's settings when it does not exist."""
    report = ImportReport(project=project_name, format="cellabel")
    with open_snapshot(path, CELLABEL_FILE) as src:
        header: dict[str, Any] | None = None
        users: list[dict[str, Any]] = []
        for rec in src.lines():
            if rec.get("type") == "header":
                header = rec
            elif rec.get("type") == "users":
                users = rec["users"]
        if header is None or header.get("format") != FORMAT:
            raise Invalid("This is not a CelLabel snapshot (no cellabel header line).")
        if header.get("version") != FORMAT_VERSION:
            raise Invalid(f"CelLabel format version {header.get('version')} is not supported.")
        project = _project(session, project_name, header)
        user_ids = _users(session, users, report)
        for rec in src.lines():
            if rec.get("type") == "clip":
                _import_clip_record(session, project, rec, src, user_ids, report, rebuild_frames)
    return report


def _import_clip_record(
    session: Session,
    project: Project,
    rec: dict[str, Any],
    src: SnapshotSource,
    users: dict[str, int],
    report: ImportReport,
    rebuild_frames: bool,
) -> None:
    c = rec["clip"]
    clip = session.scalar(
        select(Clip).where(Clip.project_id == project.id, Clip.content_hash == c["content_hash"])
    )
    created = clip is None
    if clip is None:
        clip = _new_clip(session, project, c, src)
        if clip is None:
            report.skipped.append(
                f"{c['filename']}: not in this project and its file is not in the snapshot "
                "(export with the media format, or import the clip first)."
            )
            return
        report.clips_created += 1
    kind, annotator = rec["annotation"]["kind"], rec["annotation"]["annotator"]
    annotator_id = users.get(annotator) if annotator else None
    same = select(Annotation.id).where(
        Annotation.clip_id == clip.id,
        Annotation.kind == kind,
        Annotation.annotator_id.is_(None)
        if annotator_id is None
        else Annotation.annotator_id == annotator_id,
    )
    if session.scalar(same) is not None:
        report.skipped.append(f"{c['filename']}: already holds this {kind} annotation.")
        return
    has_primary = session.scalar(
        select(Annotation.id).where(Annotation.clip_id == clip.id, Annotation.is_primary.is_(True))
    )
    _ClipImport(session, users, clip.id).run(
        rec, primary=bool(rec["annotation"]["is_primary"]) and has_primary is None
    )
    report.annotations += 1
    if created and rebuild_frames:
        queue_pipeline(session, clip, only=["frames"])
    session.flush()


# --------------------------------------------------------------------------- COCO, captions


def _clip_by_key(session: Session, project: Project, key: str) -> Clip | None:
    return session.scalar(
        select(Clip)
        .where(Clip.project_id == project.id, Clip.content_hash.startswith(key, autoescape=True))
        .order_by(Clip.id)
        .limit(1)
    )


def import_coco(session: Session, project: Project, path: Path) -> ImportReport:
    """COCO-WholeBody keypoints (as exported: images carry ``clip`` or ``clip_id``) as model
    drafts of each clip, one character per ``track_id``."""
    report = ImportReport(project=project.name, format="coco_wholebody")
    with open_snapshot(path, WHOLEBODY_FILE) as src, src.open(src.main) as fh:
        try:
            coco = json.load(fh)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{src.main} is not JSON: {exc.msg}.") from exc
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise Invalid("A COCO file needs an 'images' list.")
    keys = sorted({(str(im.get("clip", "")), im.get("clip_id")) for im in coco["images"]},
                  key=lambda k: (k[0], k[1] or 0))  # fmt: skip
    for key, clip_id in keys:
        clip = _clip_by_key(session, project, key) if key else None
        if clip is None and isinstance(clip_id, int):
            clip = session.get(Clip, clip_id)
            clip = clip if clip is not None and clip.project_id == project.id else None
        if clip is None:
            report.skipped.append(f"images of clip {key or clip_id}: no such clip in the project.")
            continue
        part = images_of_clip(coco, key, clip_id if not key else None)
        result = drafts.import_coco_wholebody(session, clip, part)
        report.drafts += int(str(result["tracks"]))
    return report


def _caption_rows(
    annotation: Annotation, record: dict[str, Any], session: Session
) -> list[drafts.CaptionDraftRow]:
    shots = list(
        session.scalars(
            select(Shot).where(Shot.annotation_id == annotation.id).order_by(Shot.start_frame)
        )
    )
    chars = {
        c.name: c.id
        for c in session.scalars(select(Character).where(Character.annotation_id == annotation.id))
    }
    rows = [
        drafts.CaptionDraftRow(CaptionLevel.clip, 0, f, t)
        for f, t in record.get("captions", {}).items()
    ]
    by_span = {(s.start_frame, s.end_frame): s.id for s in shots}
    for n, shot in enumerate(record.get("shots", [])):
        target = by_span.get((shot.get("start"), shot.get("end")))
        if target is None and len(record["shots"]) == len(shots):
            target = shots[n].id
        if target is not None:
            rows += [
                drafts.CaptionDraftRow(CaptionLevel.shot, target, f, t)
                for f, t in shot.get("captions", {}).items()
            ]
    for ch in record.get("characters", []):
        if ch.get("name") in chars:
            rows += [
                drafts.CaptionDraftRow(CaptionLevel.character, chars[ch["name"]], f, t)
                for f, t in ch.get("captions", {}).items()
            ]
    return rows


def _set_primary_captions(
    session: Session, annotation: Annotation, rows: list[drafts.CaptionDraftRow]
) -> int:
    existing = {
        (c.level, c.target_id, c.field): c
        for c in session.scalars(select(Caption).where(Caption.annotation_id == annotation.id))
    }
    changed = 0
    for row in rows:
        caption = existing.get((row.level, row.target_id, row.field))
        if caption is None:
            caption = Caption(
                annotation_id=annotation.id,
                level=row.level,
                target_id=row.target_id,
                field=row.field,
                text="",
            )
            session.add(caption)
            session.flush()
        if caption.text == row.text:
            continue
        before = caption.text
        caption.text = row.text
        session.flush()
        session.add(
            Revision(
                annotation_id=annotation.id,
                node_type="caption",
                node_id=caption.id,
                version=caption.version,
                action="import",
                source=Source.import_,
                before={"text": before},
                after={"text": row.text},
            )
        )
        changed += 1
    return changed


def import_captions(
    session: Session, project: Project, path: Path, into: str = "primary"
) -> ImportReport:
    """Captions JSONL (as exported) into each clip's primary annotation (a revision per changed
    caption) or its model draft (replacing the draft captions)."""
    if into not in ("primary", "model"):
        raise Invalid("Import captions into 'primary' or 'model'.")
    report = ImportReport(project=project.name, format="captions")
    with open_snapshot(path, CAPTIONS_FILE) as src:
        for record in src.lines():
            key = str(record.get("clip", ""))
            clip = _clip_by_key(session, project, key) if key else None
            if clip is None:
                report.skipped.append(f"clip {key or '?'}: no such clip in the project.")
                continue
            if into == "model":
                draft = drafts.model_annotation(session, clip)
                report.captions += drafts.replace_model_captions(
                    session, draft, _caption_rows(draft, record, session), "import"
                )
                continue
            annotation = session.scalar(
                select(Annotation).where(
                    Annotation.clip_id == clip.id, Annotation.is_primary.is_(True)
                )
            )
            if annotation is None:
                report.skipped.append(f"clip {key}: has no primary annotation.")
                continue
            report.captions += _set_primary_captions(
                session, annotation, _caption_rows(annotation, record, session)
            )
    return report
