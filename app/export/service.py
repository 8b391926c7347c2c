"""Export snapshots: the rows a person creates, lists and downloads.

A snapshot is created (row ``queued``) and built by the ``cellabel.export.build`` task (or
inline by the CLI in embedded mode): :mod:`app.export.build` builds and records the archive,
:mod:`app.export.snapshot` chooses what goes in and writes it. The archive is then immutable:
downloads stream the stored file, or from a bucket go to it through a short-lived presigned
URL (the web never carries the bytes).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core.errors import Conflict, Invalid, NotFound
from app.core.jobs import enqueue
from app.core.storage import get_storage
from app.export.models import ExportSnapshot
from app.export.schemas import ExportCreate
from app.export.snapshot import count_selected
from app.export.target import check_target
from app.projects.models import Project

BUILD_TASK = "cellabel.export.build"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


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
        raise Conflict(
            f"Project {project.name!r} already has a snapshot named {data.name!r}.", field="name"
        )
    if count_selected(session, project.id, data.filter) == 0:
        raise Invalid("No clip matching this filter has an approved primary annotation yet.")
    target = check_target(data.target) if data.target.strip() else None
    snapshot = ExportSnapshot(
        project_id=project.id,
        name=data.name,
        formats=list(data.formats),
        filter=data.filter.model_dump(mode="json", exclude_defaults=True),
        options=data.options.model_dump(mode="json"),
        state=QUEUED,
        target_url=target,
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


def archive_key(snapshot: ExportSnapshot) -> str:
    """Where the built zip of a finished snapshot is in the media store."""
    if snapshot.state != DONE or not snapshot.storage_key:
        raise Conflict(f"Export {snapshot.name!r} is {snapshot.state}; it has no file yet.")
    return snapshot.storage_key


def _missing(snapshot: ExportSnapshot) -> NotFound:
    return NotFound(f"The file of export {snapshot.name!r} is missing from storage.")


def archive_path(snapshot: ExportSnapshot) -> Path:
    """The built zip of a finished snapshot, as a file on this host."""
    try:
        return get_storage().local_file(archive_key(snapshot))
    except FileNotFoundError as exc:
        raise _missing(snapshot) from exc


def archive_url(session: Session, snapshot: ExportSnapshot) -> str | None:
    """A short-lived URL the browser downloads the finished zip from, named as
    :func:`download_name` says; None when the store has no such URLs (a local folder)."""
    storage = get_storage()
    key = archive_key(snapshot)
    url = storage.presigned_get(key, filename=download_name(session, snapshot))
    if url is not None and not storage.exists(key):
        raise _missing(snapshot)
    return url


def download_name(session: Session, snapshot: ExportSnapshot) -> str:
    project = session.get_one(Project, snapshot.project_id)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in snapshot.name)
    return f"{project.name}-{safe}.zip"
