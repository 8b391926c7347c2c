"""Records-only manifest import: clip rows in bulk from metadata, no media read or copied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.clips import records
from app.clips.filters import ClipFilter, matching_clips
from app.clips.models import Clip, ClipState
from app.core.db import make_engine
from app.core.errors import Invalid
from app.core.migrate import upgrade_database
from tests.factories import create_project


def _manifest(folder: Path, rows: list[dict[str, object]]) -> Path:
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _records_once(db: Session, tmp_path: Path) -> None:
    project = create_project(db)
    rows = [
        {"path": f"/nowhere/show/ep{n}.mp4", "subsets": ["pose"], "tags": {"show": "a"},
         "external_id": f"x{n}"}
        for n in range(12)
    ]  # fmt: skip
    manifest = _manifest(tmp_path, rows)
    first = records.import_records(db, project, records.read_manifest(manifest))
    assert (first.created, first.duplicates) == (12, 0)
    again = records.import_records(db, project, records.read_manifest(manifest))
    assert (again.created, again.duplicates) == (0, 12)
    clips = list(db.scalars(select(Clip).where(Clip.project_id == project.id).order_by(Clip.id)))
    assert [c.external_id for c in clips] == [r["external_id"] for r in rows]
    assert [c.probe["source_path"] for c in clips] == [r["path"] for r in rows]
    assert {c.filename for c in clips} == {f"ep{n}.mp4" for n in range(12)}
    assert all(c.state == ClipState.uploaded and c.subsets == ["pose"] for c in clips)
    assert all(c.source_tags == {"show": "a"} for c in clips)


def test_records_are_created_once_with_their_metadata_and_no_files(
    db: Session, tmp_path: Path
) -> None:
    _records_once(db, tmp_path)


def test_records_import_on_embedded_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with sessionmaker(bind=engine).begin() as session:
            _records_once(session, tmp_path)
    finally:
        engine.dispose()


def test_a_bad_subset_imports_nothing(db: Session, tmp_path: Path) -> None:
    project = create_project(db)
    rows = [{"path": "a.mp4", "subsets": ["pose"]}, {"path": "b.mp4", "subsets": ["nope"]}]
    with pytest.raises(Invalid):
        records.import_records(db, project, records.read_manifest(_manifest(tmp_path, rows)))
    assert db.scalar(select(Clip.id).where(Clip.project_id == project.id)) is None


def test_external_ids_find_their_records_among_records_without_one(
    db: Session, tmp_path: Path
) -> None:
    """Records without an external id are left out of its index (a bulk import writes one
    entry fewer each): the filter by external ids still finds exactly the given ones, and
    through the index."""
    project = create_project(db)
    rows = [
        {"path": f"/nowhere/show/ep{n}.mp4", **({"external_id": f"x{n}"} if n % 3 == 0 else {})}
        for n in range(12)
    ]
    records.import_records(db, project, records.read_manifest(_manifest(tmp_path, rows)))
    wanted = ClipFilter(external_ids=["x3", "x9", "x4"])  # x4: no such record
    query = matching_clips(db, project.id, wanted)
    found = db.scalars(select(Clip.filename).where(Clip.id.in_(query)).order_by(Clip.id))
    assert list(found) == ["ep3.mp4", "ep9.mp4"]
    # The filter's condition (IN) implies IS NOT NULL: the partial index can serve it.
    db.execute(text("SET LOCAL enable_seqscan = off"))  # a table this small is read whole
    lookup = select(Clip.id).where(Clip.external_id.in_(wanted.external_ids))
    sql = str(lookup.compile(db.bind, compile_kwargs={"literal_binds": True}))
    assert "ix_clip_external_id" in "\n".join(db.scalars(text(f"EXPLAIN {sql}")))


def test_a_manifest_longer_than_one_statement_is_imported_part_by_part(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each COPY and INSERT takes a part of the manifest (no statement runs into the timeout):
    a repeat in a later part is still a duplicate, and a bad row in the last part still
    imports nothing."""
    monkeypatch.setattr(records, "RECORDS_PER_STATEMENT", 5)
    project = create_project(db)
    rows = [{"path": f"/nowhere/show/ep{n}.mp4", "external_id": f"x{n}"} for n in range(10)]
    rows += [{"path": "/nowhere/show/ep3.mp4"}, {"path": "/nowhere/show/ep10.mp4"}]
    result = records.import_records(db, project, records.read_manifest(_manifest(tmp_path, rows)))
    assert (result.created, result.duplicates) == (11, 1)
    clips = list(db.scalars(select(Clip).where(Clip.project_id == project.id).order_by(Clip.id)))
    assert [c.filename for c in clips] == [f"ep{n}.mp4" for n in range(11)]
    assert clips[3].external_id == "x3"  # the first of the two rows of ep3 made the clip

    bad = [{"path": f"/nowhere/other/ep{n}.mp4"} for n in range(11)] + [{"path": ""}]
    with pytest.raises(Invalid):
        records.import_records(db, project, records.iter_manifest(_manifest(tmp_path, bad)))
    assert db.scalar(select(func.count()).where(Clip.project_id == project.id)) == 11
