"""Task sends with the broker down, and workers that die or come back late.

A real redis-server (``private_redis``) is stopped and started again, a real Celery worker
runs the tasks, and the outbox and job rows in PostgreSQL are the record checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import delete, func, select

from app.agreement.models import AgreementScore
from app.agreement.recompute import RECOMPUTE_TASK, request_recompute
from app.auth import service as auth_service
from app.auth.models import Role
from app.core.config import get_settings
from app.core.db import session_scope, utcnow
from app.core.models import OutboxMessage
from app.main import create_app
from app.pipeline.models import Job, JobState
from app.pipeline.runner import run_claimed
from tests.agreement.conftest import build_scenario
from tests.factories import create_clip, create_project, create_user
from tests.reliability.conftest import (
    CELLABEL,
    ROOT,
    PrivateRedis,
    WorkerPool,
    serve,
    subprocess_env,
    wait_for,
)
from tests.reliability.test_worker_faults import import_clips, jobs_of

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.postgres_only]

HEARTBEAT_S, STALE_AFTER_S, RECONCILE_EVERY_S = 0.5, 3.0, 1.0


@pytest.fixture
def on_private_broker(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """The web and the CLI in this process send to the private broker; the outbox starts
    empty (rows other tests left would be sent too)."""
    settings = get_settings()
    saved = settings.redis_url
    settings.redis_url = private_redis.url
    with session_scope() as session:
        session.execute(delete(OutboxMessage))
    try:
        yield private_redis
    finally:
        settings.redis_url = saved
        if private_redis.process is None:
            private_redis.start()


def outbox_rows() -> list[tuple[str, list[object], int, str | None]]:
    with session_scope() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        return [(r.task_name, list(r.args), r.attempts, r.last_error) for r in rows]


def reconcile_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A day's min age: only the outbox is in play, not queued jobs other tests left behind.
    return subprocess.run(
        [str(CELLABEL), "reconcile", "--min-age", "86400"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_recompute_asked_while_the_broker_is_down_is_kept_and_sent_when_it_is_back(
    on_private_broker: PrivateRedis, workers: WorkerPool
) -> None:
    with session_scope() as session:
        clip_id = build_scenario(session)["clip"].id
        _, token = auth_service.create_api_token(session, create_user(session, Role.admin), "t")
    # The submissions' own recompute went out with the broker up; only ours is in play.
    assert outbox_rows() == []
    with session_scope() as session:
        session.execute(delete(AgreementScore).where(AgreementScore.clip_id == clip_id))
    redis.Redis.from_url(on_private_broker.url).flushdb()

    on_private_broker.stop()
    with serve(create_app()) as base:
        response = httpx.post(
            f"{base}/api/agreement/clips/{clip_id}/recompute",
            headers={"Authorization": f"Bearer {token}"}, timeout=60,
        )  # fmt: skip
    assert response.status_code == 202, response.text
    ((task, args, attempts, error),) = outbox_rows()  # recorded, not just logged
    assert (task, args, attempts) == (RECOMPUTE_TASK, [clip_id], 1) and error

    on_private_broker.start()
    env = subprocess_env(REDIS_URL=on_private_broker.url)
    done = reconcile_cli(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent 1 task(s)" in " ".join(done.stdout.split())  # the terminal may wrap it
    assert outbox_rows() == []
    worker = workers.start(env)

    def scored() -> bool:
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker died:\n{worker.tail()}")
        with session_scope() as session:
            count = select(func.count(AgreementScore.id)).where(AgreementScore.clip_id == clip_id)
            return bool(session.scalar(count))

    wait_for(scored, 120, "the recompute to write the clip's agreement scores", interval_s=0.3)


def test_reconcile_with_the_broker_down_exits_1_and_names_every_unsent_task(
    on_private_broker: PrivateRedis,
) -> None:
    on_private_broker.stop()
    with session_scope() as session:
        clip_ids = [create_clip(session, create_project(session)).id for _ in range(2)]
    for clip_id in clip_ids:
        with session_scope() as session:
            request_recompute(session, clip_id)
    assert [row[:3] for row in outbox_rows()] == [(RECOMPUTE_TASK, [c], 1) for c in clip_ids]

    done = reconcile_cli(subprocess_env(REDIS_URL=on_private_broker.url))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Could not send 2 task(s)" in done.stdout
    for clip_id in clip_ids:
        assert f"{RECOMPUTE_TASK}({clip_id}): " in done.stdout
    assert [row[:3] for row in outbox_rows()] == [(RECOMPUTE_TASK, [c], 2) for c in clip_ids]


def test_a_killed_workers_step_is_taken_over_within_seconds_and_its_late_write_is_refused(
    private_redis: PrivateRedis, workers: WorkerPool, tmp_path: Path
) -> None:
    env = subprocess_env(
        REDIS_URL=private_redis.url, JOB_HEARTBEAT_S=str(HEARTBEAT_S),
        JOB_STALE_AFTER_S=str(STALE_AFTER_S), RECONCILE_EVERY_S=str(RECONCILE_EVERY_S),
    )  # fmt: skip
    first = workers.start(env)
    (clip_id,) = import_clips(
        tmp_path, ["beat_me"], "pose", env, seconds=4.0, kinds=("humanoid",), timing="ones",
        shots=1, width=256,
    )  # fmt: skip

    def keypoints() -> Job:
        return next(j for j in jobs_of([clip_id]) if j.step == "keypoints")

    def beating() -> bool:
        job = keypoints()
        assert job.state != JobState.done, f"keypoints ended before the kill ({job.duration_s} s)"
        started, beat = job.started_at, job.heartbeat_at
        return job.state == JobState.running and bool(started and beat and beat > started)

    wait_for(beating, 120, "the keypoints step to send a heartbeat", interval_s=0.02)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    killed_at = utcnow()
    assert (keypoints().state, keypoints().attempts) == (JobState.running, 1)

    # The reconciler runs on its own (beat); nobody sends anything by hand.
    second = workers.start(env, beat=True)

    def taken_over() -> bool:
        if second.process.poll() is not None:
            raise AssertionError(f"the worker died:\n{second.tail()}")
        return keypoints().attempts == 2

    wait_for(taken_over, 60, "the silent job to be taken over", interval_s=0.2)
    took = keypoints().started_at
    assert took is not None and took - killed_at < timedelta(seconds=30)
    wait_for(lambda: keypoints().state == JobState.done, 120, "the retry to finish")
    finished = keypoints()

    # The killed run's code path, resuming late as attempt 1: its result is refused.
    assert run_claimed(finished.id, attempt=1) is None
    after = keypoints()
    assert (after.state, after.attempts, after.finished_at, after.result) == (
        JobState.done, 2, finished.finished_at, finished.result,
    )  # fmt: skip
