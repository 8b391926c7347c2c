"""Building a snapshot's archive: the task body that claims a snapshot, writes and zips it
into ``exports/`` in the media store (and copies it to the target bucket prefix the admin
named, if any) and records size, SHA-256 and the exported annotation versions, every write
fenced on the build's attempt; and the reconciler's re-sends.

Runs open their own sessions (they are task bodies); ``workers/export/tasks.py`` calls
:func:`run_build`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.core.db import is_postgresql, session_scope, utcnow
from app.core.heartbeat import heartbeat, stale_before
from app.core.jobs import enqueue
from app.core.storage import get_storage
from app.export.archive import sha256_of, zip_folder
from app.export.models import ExportSnapshot
from app.export.service import BUILD_TASK, DONE, FAILED, QUEUED, RUNNING, download_name
from app.export.snapshot import Progress, write_snapshot
from app.export.target import write_copy

log = logging.getLogger(__name__)

# Extra connections reading ahead while the task writes (PostgreSQL works in its own
# processes, so on 2+ cores the reads and the writing overlap).
PARALLEL_READERS = 2


@dataclass
class BuildResult:
    storage_key: str
    size_bytes: int
    sha256: str
    annotation_versions: dict[str, int]
    target_object: str | None = None
    target_error: str | None = None


def build_archive(
    session: Session,
    snapshot: ExportSnapshot,
    progress: Progress | None = None,
    readers: int = 0,
    attempt: int | None = None,
) -> BuildResult:
    """Write the snapshot into a scratch folder on this host and zip it into the media store
    (not recorded yet) as the file of build ``attempt`` (default: the snapshot's current one)."""
    storage = get_storage()
    number = attempt or snapshot.attempt
    with storage.scratch() as work:
        staging = work / "snapshot"
        staging.mkdir()
        versions = write_snapshot(session, snapshot, staging, progress, readers)
        # One file per attempt: a build that was taken over and finishes late cannot replace
        # the archive the new attempt recorded.
        key = f"exports/{snapshot.project_id}/{snapshot.id}/snapshot-{number}.zip"
        archive = work / "snapshot.zip"
        zip_folder(staging, archive)
        size, digest = archive.stat().st_size, sha256_of(archive)
        storage.publish(key, archive)
    result = BuildResult(key, size, digest, versions)
    copy_to_target(session, snapshot, result)
    return result


def copy_to_target(session: Session, snapshot: ExportSnapshot, result: BuildResult) -> None:
    """Copy the published archive to the snapshot's target prefix, noting in ``result`` where
    it went or why it could not (a failed copy leaves the snapshot itself good)."""
    if not snapshot.target_url:
        return
    manifest = {
        "snapshot_id": snapshot.id,
        "project_id": snapshot.project_id,
        "name": snapshot.name,
        "formats": snapshot.formats,
        "clips": len(result.annotation_versions),
        "size_bytes": result.size_bytes,
        "sha256": result.sha256,
        "created_at": snapshot.created_at.isoformat(),
        "built_at": utcnow().isoformat(),
    }
    result.target_object, result.target_error = write_copy(
        snapshot.target_url, result.storage_key, download_name(session, snapshot), manifest
    )
    if result.target_error:
        log.warning("export %s: %s", snapshot.id, result.target_error)


def record_result(snapshot: ExportSnapshot, result: BuildResult) -> None:
    snapshot.state = DONE
    snapshot.progress = 1.0
    snapshot.storage_key = result.storage_key
    snapshot.size_bytes = result.size_bytes
    snapshot.sha256 = result.sha256
    snapshot.annotation_versions = result.annotation_versions
    snapshot.target_object = result.target_object
    snapshot.target_error = result.target_error
    snapshot.error = None
    snapshot.finished_at = utcnow()


def build_now(session: Session, snapshot: ExportSnapshot) -> ExportSnapshot:
    """Build and record in the caller's transaction (tests, small scripts)."""
    record_result(snapshot, build_archive(session, snapshot))
    session.flush()
    return snapshot


def claim(session: Session, snapshot_id: int) -> int | None:
    """Atomically move a snapshot to running: a queued one, or a running one whose build went
    silent (its worker died). Returns the build's attempt number (its fencing token), or None
    if someone else has it or it is finished."""
    now = utcnow()
    result = session.execute(
        update(ExportSnapshot)
        .where(
            ExportSnapshot.id == snapshot_id,
            or_(ExportSnapshot.state == QUEUED, _silent_build(stale_before(now))),
        )
        .values(state=RUNNING, progress=0.0, heartbeat_at=now, attempt=ExportSnapshot.attempt + 1)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(ExportSnapshot.attempt).where(ExportSnapshot.id == snapshot_id))


def _owned(snapshot_id: int, attempt: int) -> ColumnElement[bool]:
    return and_(
        ExportSnapshot.id == snapshot_id,
        ExportSnapshot.attempt == attempt,
        ExportSnapshot.state == RUNNING,
    )


def _touch(snapshot_id: int, attempt: int, **values: Any) -> bool:
    """Write ``values`` (and the heartbeat) while attempt ``attempt`` owns the build."""
    with session_scope() as s:
        result = s.execute(
            update(ExportSnapshot)
            .where(_owned(snapshot_id, attempt))
            .values(heartbeat_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def record_attempt(session: Session, snapshot_id: int, attempt: int, result: BuildResult) -> bool:
    """Record the archive of attempt ``attempt``; False (nothing written, its file removed)
    when another attempt took the build over meanwhile."""
    owned = session.scalar(
        select(ExportSnapshot.id).where(_owned(snapshot_id, attempt)).with_for_update()
    )
    if owned is None:
        get_storage().delete_tree(result.storage_key)
        log.warning("export %s: attempt %s was taken over; its archive is dropped",
                    snapshot_id, attempt)  # fmt: skip
        return False
    record_result(session.get_one(ExportSnapshot, snapshot_id), result)
    session.flush()
    return True


def _silent_build(cutoff: datetime) -> ColumnElement[bool]:
    """A running build with no sign of life since ``cutoff``: its worker is gone."""
    last_sign = func.coalesce(ExportSnapshot.heartbeat_at, ExportSnapshot.created_at)
    return and_(ExportSnapshot.state == RUNNING, last_sign < cutoff)


# A queued snapshot's send failing is the outbox's business; a snapshot queued this long had
# its message lost by the broker (flushed, restarted). Staging folders this old are orphans.
LEFT_BEHIND_AFTER = timedelta(minutes=30)


def reconcile_exports(session: Session) -> list[int]:
    """Re-send the builds of snapshots whose worker died (running, silent for longer than
    JOB_STALE_AFTER_S) or whose message was lost (queued for LEFT_BEHIND_AFTER). A duplicate
    message is harmless: :func:`claim` lets exactly one build run. Returns the re-sent
    snapshot ids."""
    now = utcnow()
    left_before = now - LEFT_BEHIND_AFTER
    lost_queued = and_(ExportSnapshot.state == QUEUED, ExportSnapshot.created_at < left_before)
    ids = list(
        session.scalars(
            select(ExportSnapshot.id)
            .where(or_(lost_queued, _silent_build(stale_before(now))))
            .order_by(ExportSnapshot.id)
        )
    )
    for snapshot_id in ids:
        enqueue(session, BUILD_TASK, snapshot_id)
    return ids


def _progress_recorder(snapshot_id: int, attempt: int, also: Progress | None) -> Progress:
    """Records progress at each whole percent (the heartbeat thread covers quiet stretches)."""
    last = {"fraction": -1.0}

    def record(done: int, total: int) -> None:
        fraction = round(done / total, 2) if total else 1.0
        if also:
            also(done, total)
        if fraction != last["fraction"]:
            last["fraction"] = fraction
            _touch(snapshot_id, attempt, progress=min(fraction, 0.99))

    return record


def run_build(snapshot_id: int, on_progress: Progress | None = None) -> str:
    """The task body: claim, build in a consistent read, record; returns the final state."""
    with session_scope() as session:
        attempt = claim(session, snapshot_id)
        if attempt is None:
            found = session.get(ExportSnapshot, snapshot_id)
            return found.state if found else "missing"
    with heartbeat(lambda: _touch(snapshot_id, attempt)):
        return run_claimed_build(snapshot_id, attempt, on_progress)


def run_claimed_build(snapshot_id: int, attempt: int, on_progress: Progress | None = None) -> str:
    """Build as attempt ``attempt``; its result and its failure are written only while the
    attempt still owns the snapshot. Returns the snapshot's state as this run leaves it."""
    try:
        with session_scope() as session:
            if is_postgresql(session):
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            snapshot = session.get_one(ExportSnapshot, snapshot_id)
            recorder = _progress_recorder(snapshot_id, attempt, on_progress)
            result = build_archive(session, snapshot, recorder, PARALLEL_READERS, attempt)
        with session_scope() as session:
            recorded = record_attempt(session, snapshot_id, attempt, result)
    except Exception as exc:
        log.exception("export %s failed", snapshot_id)
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        failed = _touch(snapshot_id, attempt, state=FAILED, error=error, finished_at=utcnow())
        return FAILED if failed else "taken over"
    return DONE if recorded else "taken over"
