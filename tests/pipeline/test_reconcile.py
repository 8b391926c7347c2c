"""The reconciler re-sends jobs that PostgreSQL has queued but the broker (Redis) lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import utcnow
from app.core.jobs import PENDING_KEY, QUEUE_CHEAP, send_now
from app.pipeline.service import RUN_STEP_TASK, broker_job_ids, queue_pipeline, reconcile
from tests.conftest import TEST_REDIS_URL
from tests.factories import create_clip

PRIVATE_BROKER = TEST_REDIS_URL.rsplit("/", 1)[0] + "/8"  # no test worker listens here


def test_lost_jobs_are_resent_and_present_ones_are_left_alone(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "redis_url", PRIVATE_BROKER)
    redis.Redis.from_url(PRIVATE_BROKER).delete("cheap", "model")
    lost_clip, kept_clip = create_clip(db), create_clip(db)
    lost = queue_pipeline(db, lost_clip)[0]
    kept = queue_pipeline(db, kept_clip)[0]
    db.info.pop(PENDING_KEY, None)  # as if Redis had been flushed after the commit
    for job in (lost, kept):
        job.queued_at = utcnow() - timedelta(minutes=10)
    db.flush()
    send_now(RUN_STEP_TASK, kept.id, queue=QUEUE_CHEAP)
    assert kept.id in (broker_job_ids() or set())

    resent = reconcile(db)

    assert lost.id in resent and kept.id not in resent
    pending = [p[:3] for p in db.info.get(PENDING_KEY, [])]
    assert (RUN_STEP_TASK, (lost.id,), QUEUE_CHEAP) in pending
    assert lost.id not in reconcile(db)  # a re-sent job waits min_age again
    redis.Redis.from_url(PRIVATE_BROKER).delete("cheap", "model")
