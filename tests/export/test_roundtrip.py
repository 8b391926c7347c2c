"""CelLabel JSON Lines: export, import into an empty database, export again -> same bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Character, KeypointFrame, Revision, Track
from app.auth.models import User
from app.core.db import make_engine
from app.core.migrate import upgrade_database
from app.export import build, service
from app.export.archive import extract
from app.export.importer import import_cellabel
from app.projects.models import Project
from app.review.models import ReviewComment
from tests.conftest import TEST_DB_NAME, recreate_database
from tests.export.builders import SLIDING_HOLD, approved_annotation, media_clip, queued_snapshot
from tests.factories import create_project

FORMATS = ["cellabel", "media"]


@pytest.fixture
def fresh_db() -> Iterator[Session]:
    """A second, empty database at the newest schema."""
    url = recreate_database(f"{TEST_DB_NAME}_roundtrip")
    upgrade_database(url)
    engine = make_engine(url)
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


def export_cellabel(db: Session, project_id: int, tmp: Path) -> Path:
    snap = queued_snapshot(db, project_id, "rt", FORMATS)
    build.build_now(db, snap)
    folder = tmp / f"snapshot-{id(db)}"
    extract(service.archive_path(snap), folder)
    return folder


def test_import_into_an_empty_database_re_exports_byte_identical(
    db: Session, fresh_db: Session, tmp_path: Path
) -> None:
    project = create_project(db, name="roundtrip")
    first = [
        approved_annotation(db, media_clip(db, project, f"clip {n}".encode())) for n in range(2)
    ]
    folder = export_cellabel(db, project.id, tmp_path)
    original = (folder / "cellabel.jsonl").read_bytes()

    report = import_cellabel(fresh_db, "roundtrip", folder, rebuild_frames=False)
    fresh_db.commit()
    assert (report.clips_created, report.annotations, report.skipped) == (2, 2, [])
    assert len(report.users_created) == 4
    assert all(not u.is_active for u in fresh_db.scalars(select(User)))
    imported = fresh_db.scalars(select(Annotation).order_by(Annotation.id)).all()
    assert [a.version for a in imported] == [a.version for a in first]
    assert fresh_db.scalar(select(ReviewComment).where(ReviewComment.parent_id.is_not(None)))
    revisions = select(Revision).where(Revision.annotation_id.in_([a.id for a in first]))
    assert len(fresh_db.scalars(select(Revision)).all()) == len(db.scalars(revisions).all())

    project_again = fresh_db.scalar(select(Project).where(Project.name == "roundtrip"))
    assert project_again is not None
    again = export_cellabel(fresh_db, project_again.id, tmp_path)
    assert (again / "cellabel.jsonl").read_bytes() == original
    assert sorted(p.name for p in (again / "media").iterdir()) == sorted(
        p.name for p in (folder / "media").iterdir()
    )
    header = json.loads(original.splitlines()[0])
    assert header["format"] == "cellabel" and header["project"]["name"] == "roundtrip"
    character = json.loads(original.splitlines()[1])["characters"][0]
    assert character["drawing_runs"] == [SLIDING_HOLD.as_json()]
    assert character["timing"] == "twos"


def test_importing_twice_skips_what_is_already_there(
    db: Session, fresh_db: Session, tmp_path: Path
) -> None:
    project = create_project(db, name="twice")
    approved_annotation(db, media_clip(db, project, b"only clip"))
    folder = export_cellabel(db, project.id, tmp_path)
    import_cellabel(fresh_db, "twice", folder, rebuild_frames=False)
    report = import_cellabel(fresh_db, "twice", folder, rebuild_frames=False)
    assert (report.clips_created, report.annotations) == (0, 0)
    assert len(report.skipped) == 1 and "already holds" in report.skipped[0]


def test_a_clip_without_media_is_skipped_with_a_reason(
    db: Session, fresh_db: Session, tmp_path: Path
) -> None:
    project = create_project(db, name="nomedia")
    approved_annotation(db, media_clip(db, project, b"lonely"))
    snap = queued_snapshot(db, project.id, "x", ["cellabel"])
    build.build_now(db, snap)
    report = import_cellabel(fresh_db, "nomedia", service.archive_path(snap), rebuild_frames=False)
    assert report.annotations == 0 and "media format" in report.skipped[0]


def test_a_drawn_character_box_survives_export_and_import(
    db: Session, fresh_db: Session, tmp_path: Path
) -> None:
    project = create_project(db, name="boxes")
    annotation = approved_annotation(db, media_clip(db, project, b"boxed clip"))
    frame = db.scalars(
        select(KeypointFrame).join(Track).join(Character)
        .where(Character.annotation_id == annotation.id).order_by(KeypointFrame.frame_index)
    ).first()  # fmt: skip
    assert frame is not None
    frame.box = [10.0, 12.5, 40.0, 60.25]
    db.flush()
    folder = export_cellabel(db, project.id, tmp_path)
    import_cellabel(fresh_db, "boxes", folder, rebuild_frames=False)
    fresh_db.commit()
    boxes = fresh_db.scalars(select(KeypointFrame.box).where(KeypointFrame.box.is_not(None)))
    assert list(boxes) == [[10.0, 12.5, 40.0, 60.25]]
