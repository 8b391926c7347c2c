"""32 threads asking for clips at once on PostgreSQL: nothing is over-assigned or duplicated.

This test commits (each thread has its own connection, as web workers do), so it builds
uniquely named data in the test database and deletes it afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import Role, User
from app.batches import claims, sampling
from app.batches.models import AssignmentState, BatchClip
from app.batches.schemas import AssignConfig
from app.projects.models import Project
from tests.conftest import TEST_DB_URL
from tests.factories import create_batch, create_project, create_ready_clips, create_user

THREADS = 32
ANNOTATORS = 8
CLIPS = 60


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on their own pool (one connection per thread), committed for real."""
    own = create_engine(TEST_DB_URL, pool_size=THREADS + 4, max_overflow=0)
    try:
        yield sessionmaker(bind=own, expire_on_commit=False)
    finally:
        own.dispose()


def test_32_concurrent_callers_never_overfill_or_duplicate(
    committed: sessionmaker[Session],
) -> None:
    tag = uuid.uuid4().hex[:8]
    with committed() as s, s.begin():
        project = create_project(s, name=f"concurrency-{tag}")
        clips = create_ready_clips(s, project, CLIPS)
        users = [create_user(s, Role.annotator, username=f"cc{tag}-{i}") for i in range(ANNOTATORS)]
        batch = create_batch(s, project, clips)
        sampling.assign_batch(
            s,
            batch.id,
            AssignConfig(annotators=[u.username for u in users], overlap_k=2, overlap_pct=20,
                         seed=3),
        )  # fmt: skip
        project_id, batch_id = project.id, batch.id
        user_ids = [u.id for u in users]
    handed: list[tuple[int, int]] = []  # (annotator, batch_clip)
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def ask(user_id: int, barrier: threading.Barrier | None = None) -> None:
        """One caller: take clips and submit them until the queue has nothing for them."""
        try:
            if barrier is not None:
                barrier.wait()
            while True:
                with committed() as s, s.begin():
                    user = s.get(User, user_id)
                    assert user is not None
                    got = claims.next_clip(s, user)
                    if got is None:
                        return
                    got.state = AssignmentState.submitted
                    with lock:
                        handed.append((user_id, got.batch_clip_id))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    try:
        threads = [
            threading.Thread(target=ask, args=(user_ids[i % ANNOTATORS], start))
            for i in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        concurrent_phase = len(handed)
        # Rows another caller held were skipped (SKIP LOCKED): a last call per annotator, as a
        # person pressing "Next clip" again would, picks up anything left.
        for user_id in user_ids:
            ask(user_id)
        assert not errors, errors

        with committed() as s:
            required = dict(
                s.execute(
                    select(BatchClip.id, BatchClip.required_annotators).where(
                        BatchClip.batch_id == batch_id
                    )
                ).all()
            )
        pairs = Counter(handed)
        assert max(pairs.values()) == 1  # nobody got the same clip twice
        per_clip = Counter(bc for _, bc in handed)
        over = {bc: n for bc, n in per_clip.items() if n > required[bc]}
        assert over == {}
        assert per_clip == Counter(required)  # every clip to exactly its required annotators
        assert sorted(Counter(required.values()).items()) == [(1, 48), (2, 12)]
        assert len(handed) == 48 + 2 * 12
        assert concurrent_phase >= 0.9 * len(handed)
    finally:
        with committed() as s, s.begin():
            s.execute(delete(Project).where(Project.id == project_id))
            s.execute(delete(User).where(User.id.in_(user_ids)))
