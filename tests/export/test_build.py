"""The build task body with committed data, and the CLI in embedded mode (SQLite, inline)."""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from app.annotations.models import Annotation, Caption, NodeStatus
from app.core.config import get_settings
from app.core.db import get_sessionmaker, session_scope, utcnow
from app.core.local_storage import SCRATCH_LEFT_BEHIND_S
from app.export import build, service, snapshot
from app.export.build import LEFT_BEHIND_AFTER
from app.export.models import ExportSnapshot
from app.projects.models import Project
from tests.export.builders import (
    approved_annotation,
    embedded_cli_export,
    media_clip,
    queued_snapshot,
)
from tests.factories import create_project, local_media


@pytest.fixture
def committed_project(engine: object) -> Iterator[int]:
    """A project with two approved clips, committed so that run_build's own sessions see it."""
    with session_scope() as session:
        project = create_project(session)
        for n in range(2):
            approved_annotation(session, media_clip(session, project, f"committed {n}".encode()))
        project_id = project.id
    yield project_id
    with session_scope() as session:
        session.execute(delete(Project).where(Project.id == project_id))


def test_run_build_claims_records_progress_and_is_safe_to_run_twice(committed_project: int) -> None:
    with session_scope() as session:
        snapshot_id = queued_snapshot(session, committed_project, "task", ["cellabel"]).id
    seen: list[tuple[int, int]] = []
    assert build.run_build(snapshot_id, on_progress=lambda d, t: seen.append((d, t))) == "done"
    assert seen[-1] == (2, 2)
    with session_scope() as session:
        snap = session.get_one(ExportSnapshot, snapshot_id)
        assert (snap.state, snap.progress, len(snap.annotation_versions)) == ("done", 1.0, 2)
        sha = snap.sha256
    assert build.run_build(snapshot_id) == "done"  # a redelivered message changes nothing
    with session_scope() as session:
        assert session.get_one(ExportSnapshot, snapshot_id).sha256 == sha
    assert build.run_build(10**9) == "missing"


def _snapshot(project_id: int, name: str, **state: Any) -> int:
    with session_scope() as session:
        snapshot = queued_snapshot(session, project_id, name, ["captions"])
        for column, value in state.items():
            setattr(snapshot, column, value)
        session.flush()
        return snapshot.id


def test_a_build_whose_worker_died_is_taken_over_and_a_live_one_is_left_alone(
    committed_project: int,
) -> None:
    """A worker killed mid-build leaves its snapshot `running`; once its heartbeat is older
    than JOB_STALE_AFTER_S the reconciler re-sends it and the next delivery builds it."""
    silent_for = max(timedelta(seconds=get_settings().job_stale_after_s), LEFT_BEHIND_AFTER)
    long_ago = utcnow() - silent_for - timedelta(minutes=1)
    dead = _snapshot(committed_project, "dead", state="running", heartbeat_at=long_ago)
    lost = _snapshot(committed_project, "lost", created_at=long_ago)  # queued, message lost
    live = _snapshot(committed_project, "live", state="running", heartbeat_at=utcnow())
    scratch = local_media().root / ".scratch"  # where builds stage their files
    scratch.mkdir(parents=True, exist_ok=True)
    left_behind = Path(tempfile.mkdtemp(dir=scratch))
    in_use = Path(tempfile.mkdtemp(dir=scratch))
    hours_ago = time.time() - 2 * SCRATCH_LEFT_BEHIND_S
    os.utime(left_behind, (hours_ago, hours_ago))

    with get_sessionmaker()() as session:
        assert build.reconcile_exports(session) == [dead, lost]
        session.rollback()  # no message goes out: this test runs the builds itself

    assert build.run_build(dead) == "done"
    assert not left_behind.exists() and in_use.exists()  # a dead build's folder is removed
    in_use.rmdir()
    assert build.run_build(lost) == "done"
    assert build.run_build(live) == "running"  # its worker is alive: no second build
    with session_scope() as session:
        rebuilt = session.get_one(ExportSnapshot, dead)
        assert (rebuilt.state, len(rebuilt.annotation_versions)) == ("done", 2)
        assert rebuilt.heartbeat_at is not None and rebuilt.heartbeat_at > long_ago
        assert service.archive_path(rebuilt).is_file()
        assert session.get_one(ExportSnapshot, live).state == "running"


def test_parallel_readers_write_the_same_bytes_and_see_only_the_build_snapshot(
    engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task reads pages on extra connections sharing the build's snapshot: output in page
    order, identical to an inline build, and a caption edited after the build began stays as
    it was."""
    monkeypatch.setattr(snapshot, "CHUNK", 1)  # one clip a page: many pages, both readers busy
    monkeypatch.setattr(snapshot, "METADATA_CHUNK", 1)
    with session_scope() as session:
        project = create_project(session)
        for n in range(8):
            approved_annotation(session, media_clip(session, project, f"page {n}".encode()))
        project_id = project.id
        last_caption = max(
            session.scalars(
                select(Caption).join(Annotation).where(Annotation.status == NodeStatus.approved)
            ),
            key=lambda c: (c.annotation_id, c.id),
        )
        original, caption_id = last_caption.text, last_caption.id
        formats = ["captions", "cellabel", "manifests"]
        snapshot_id = queued_snapshot(session, project_id, "parallel", formats).id

    with session_scope() as session:  # the same snapshot read inline, in one session
        inline = build.build_archive(session, session.get_one(ExportSnapshot, snapshot_id))
        local_media().path(inline.storage_key).unlink()

    read_ahead = snapshot.read_ahead

    def edit_then_read(readers: list[Any], pages: Any) -> Any:
        # committed after the build took its snapshot, before any reader's first query
        with session_scope() as other:
            other.get_one(Caption, caption_id).text = "edited while the export ran"
        return read_ahead(readers, pages)

    monkeypatch.setattr(snapshot, "read_ahead", edit_then_read)
    try:
        assert build.run_build(snapshot_id) == "done"
        with session_scope() as session:
            task_built = session.get_one(ExportSnapshot, snapshot_id)
            assert task_built.sha256 == inline.sha256
            with zipfile.ZipFile(service.archive_path(task_built)) as zf:
                captions = [json.loads(line) for line in zf.read("captions.jsonl").splitlines()]
            assert [c["clip_id"] for c in captions] == sorted(c["clip_id"] for c in captions)
            texts = json.dumps(captions)
            assert len(captions) == 8 and original in texts
            assert "edited while the export ran" not in texts
            assert session.get_one(Caption, caption_id).text == "edited while the export ran"
    finally:
        with session_scope() as session:
            session.execute(delete(Project).where(Project.id == project_id))


def test_cli_exports_inline_in_embedded_mode(tmp_path: Path) -> None:
    out = tmp_path / "snapshot.zip"
    embedded_cli_export(tmp_path, out)
    with zipfile.ZipFile(out) as zf:
        coco = json.loads(zf.read("coco_person_keypoints.json"))
        captions = zf.read("captions.jsonl").decode().splitlines()
    assert len(coco["images"]) == 4 and len(coco["annotations"]) == 4
    assert len(captions) == 1
