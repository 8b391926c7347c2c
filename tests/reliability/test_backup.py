"""scripts/backup.sh and scripts/restore.sh end to end on a scratch database and media folder."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text, update
from sqlalchemy.orm import Session

from app.annotations.models import KeypointFrame
from app.auth.models import Role, User
from app.core.db import Base
from app.core.migrate import upgrade_database
from app.projects.models import Project
from tests.conftest import PG_ADMIN_URL, TEST_DB_NAME, recreate_database
from tests.factories import create_clip, create_model_draft, create_project, create_user
from tests.reliability.conftest import ROOT, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]  # pg_dump, pg_restore


def script(
    name: str, backup: Path, database_url: str, media: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), str(backup)],
        env=subprocess_env(DATABASE_URL=database_url, MEDIA_ROOT=str(media)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def snapshot(engine: Engine) -> dict[str, object]:
    """Row counts of every table, plus values a restore must bring back exactly."""
    with engine.connect() as conn:
        counts = {
            table: conn.scalar(select(func.count()).select_from(text(f'"{table}"')))
            for table in inspect(conn).get_table_names()
        }
        users = conn.execute(select(User.username, User.password_hash).order_by(User.id)).all()
        points = conn.execute(
            select(KeypointFrame.frame_index, KeypointFrame.points).order_by(KeypointFrame.id)
        ).all()
    return {"counts": counts, "users": users, "points": points}


def test_backup_then_restore_brings_back_the_database_and_the_media(
    engine: Engine, tmp_path: Path
) -> None:
    source_url = recreate_database(f"{TEST_DB_NAME}_backup_src")
    target_url = recreate_database(f"{TEST_DB_NAME}_backup_dst")
    upgrade_database(source_url)
    source = create_engine(source_url)
    with Session(source) as s, s.begin():
        project = create_project(s, name="backed-up")
        create_model_draft(s, create_clip(s, project, frame_count=5, width=320, height=240))
        create_user(s, Role.admin, username="keeper")
    media = tmp_path / "media"
    (media / "clips/1/1/frames").mkdir(parents=True)
    (media / "clips/1/1/source.mp4").write_bytes(bytes(range(256)) * 100)
    (media / "clips/1/1/frames/index.json").write_text('{"count": 5}')
    (media / "exports").mkdir()
    (media / "exports/v1.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (media / "uploads").mkdir()
    (media / "uploads/.upload-partial").write_bytes(b"half a file")
    before = snapshot(source)
    backup = tmp_path / "backup"

    made = script("backup.sh", backup, source_url, media)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in backup.iterdir()} == {"db.dump", "media.tar.gz", "SHA256SUMS"}

    restored_media = tmp_path / "restored-media"
    done = script("restore.sh", backup, target_url, restored_media)
    assert done.returncode == 0, done.stderr
    target = create_engine(target_url)
    assert snapshot(target) == before
    assert set(before["counts"]) >= {t.name for t in Base.metadata.sorted_tables}  # type: ignore[arg-type]
    expected = {k: v for k, v in tree(media).items() if not k.startswith("uploads/")}
    assert tree(restored_media) == expected

    # Restoring again over changed data puts the backed-up state back (pg_restore --clean).
    with Session(target) as s, s.begin():
        s.execute(update(Project).values(name="changed after the backup"))
    assert script("restore.sh", backup, target_url, restored_media).returncode == 0
    assert snapshot(target) == before

    # A damaged backup is refused before anything is touched.
    dump = backup / "db.dump"
    dump.write_bytes(dump.read_bytes()[:-10] + bytes(10))
    with Session(target) as s, s.begin():
        s.execute(update(Project).values(name="kept"))
    refused = script("restore.sh", backup, target_url, restored_media)
    assert refused.returncode == 3 and "SHA256SUMS" in refused.stderr
    with Session(target) as s:
        assert s.scalar(select(Project.name)) == "kept"
    source.dispose()
    target.dispose()
    drop_databases(f"{TEST_DB_NAME}_backup_src", f"{TEST_DB_NAME}_backup_dst")


def drop_databases(*names: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
