"""The embedded default (SQLite): JSON1 filters, the queue under SQLite's write lock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import Role, User
from app.batches import claims, progress_cache, sampling, service
from app.batches.models import AssignmentState
from app.batches.schemas import AssignConfig, BatchCreate
from app.clips.filters import ClipFilter
from app.clips.models import ClipState
from app.core.db import make_engine
from app.core.migrate import upgrade_database
from app.projects.models import Subset
from tests.batches.test_service import check_progress, progress_scenario
from tests.factories import create_clip, create_project, create_ready_clips, create_user


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_filters_and_queue_work_on_sqlite(sqlite_engine: Engine) -> None:
    make = sessionmaker(bind=sqlite_engine, expire_on_commit=False)
    with make.begin() as s:
        project = create_project(s)
        indoor = create_ready_clips(s, project, 4, subsets=["i2v"],
                                    source_tags={"venue": ["indoor", "urban"]})  # fmt: skip
        create_clip(s, project, subsets=["pose"], state=ClipState.ready,
                    quality_flags={"blurry": "soft"})  # fmt: skip
        users = [create_user(s, Role.annotator) for _ in range(3)]
        flt = ClipFilter(subset=Subset.i2v, tags={"venue": "indoor"}, without_flags=["blurry"])
        assert service.count_matching(s, project.id, flt) == 4
        assert service.count_matching(s, project.id, ClipFilter(with_flags=["blurry"])) == 1
        batch = service.create_batch(s, BatchCreate(name="b", project_id=project.id, filter=flt))
        sampling.assign_batch(
            s, batch.id, AssignConfig(annotators=[u.username for u in users], overlap_k=2,
                                      overlap_pct=50, seed=2),
        )  # fmt: skip
        user_ids, batch_id = [u.id for u in users], batch.id

    handed: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def ask(user_id: int) -> None:
        try:
            while True:
                with make.begin() as s:
                    user = s.get(User, user_id)
                    assert user is not None
                    got = claims.next_clip(s, user)
                    if got is None:
                        return
                    got.state = AssignmentState.submitted
                    handed.append((user_id, got.clip_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(u,)) for u in user_ids for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(set(handed)) == len(handed) == 4 + 2  # 2 of 4 clips need two people
    assert {c for _, c in handed} == {c.id for c in indoor}
    with Session(sqlite_engine) as s:
        progress = progress_cache.batch_progress(s, batch_id)
    assert (progress.slots, progress.handed_out, progress.overall.counts["submitted"]) == (6, 6, 6)


def test_next_clip_takes_the_sqlite_write_lock_first(sqlite_engine: Engine, tmp_path: Path) -> None:
    make = sessionmaker(bind=sqlite_engine, expire_on_commit=False)
    with make.begin() as s:
        user_id = create_user(s, Role.annotator).id
    with make() as s:
        user = s.get(User, user_id)
        assert user is not None
        assert claims.next_clip(s, user) is None
        other = sqlite3.connect(tmp_path / "embedded.db", timeout=0.1)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("UPDATE batch SET priority = priority")
        other.close()
        s.rollback()


def test_progress_rolls_up_in_python_on_sqlite(sqlite_engine: Engine) -> None:
    """SQLite has no percentile_cont: the same numbers come from the Python roll-up."""
    with sessionmaker(bind=sqlite_engine, expire_on_commit=False).begin() as s:
        batch_id, fast, slow, now = progress_scenario(s)
        check_progress(progress_cache.batch_progress(s, batch_id, now=now), fast, slow)
