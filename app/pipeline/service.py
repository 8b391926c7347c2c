"""Queueing a clip's pipeline: its job rows, which steps there are, and re-sending lost jobs.

PostgreSQL (not the broker) is the record: each (clip, step) has one :class:`Job` row. This
module (re)queues a clip's steps and sends the first; :mod:`app.pipeline.runner` claims and
runs them. Importing it imports the step modules, so the registry is always full here.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

# Importing the step modules registers their steps.
import app.pipeline.model_steps
import app.pipeline.steps  # noqa: F401
from app.clips.models import Clip, ClipState
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.errors import Invalid
from app.core.heartbeat import stale_before
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL, enqueue
from app.pipeline.models import Job, JobState
from app.pipeline.registry import STEP_ORDER, STEPS, Step

log = logging.getLogger(__name__)

RUN_STEP_TASK = "cellabel.pipeline.run_step"


def steps() -> list[Step]:
    """Registered steps in pipeline order."""
    return [STEPS[name] for name in STEP_ORDER if name in STEPS]


def parse_steps(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    known = {s.name for s in steps()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Invalid(f"Unknown steps: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
    return names


def queue_pipeline(session: Session, clip: Clip, only: Sequence[str] | None = None) -> list[Job]:
    """(Re)queue the clip's steps (all applicable, or ``only``) and send the first one."""
    chosen = [s for s in steps() if (only is None or s.name in only)]
    existing = {j.step: j for j in session.scalars(select(Job).where(Job.clip_id == clip.id))}
    jobs: list[Job] = []
    for step in chosen:
        job = existing.get(step.name)
        if job is None:
            job = Job(clip_id=clip.id, step=step.name)
            session.add(job)
        job.state = JobState.queued
        job.queued_at = utcnow()
        job.started_at = job.finished_at = None
        job.error = None
        job.attempts = 0
        jobs.append(job)
    if clip.state != ClipState.failed or (only is None or "probe" in only):
        clip.state = ClipState.processing
        clip.error = clip.error_kind = None
    session.flush()
    if jobs:
        enqueue(session, RUN_STEP_TASK, jobs[0].id, queue=get_step(jobs[0].step).queue)
    return jobs


def get_step(name: str) -> Step:
    """The registered step called ``name``."""
    return STEPS[name]


def silent_since(cutoff: datetime) -> ColumnElement[bool]:
    """A running job with no sign of life since ``cutoff``: its worker is gone."""
    last_sign = func.coalesce(Job.heartbeat_at, Job.started_at)
    return (Job.state == JobState.running) & (last_sign < cutoff)


def queued_jobs(session: Session, clip_ids: Sequence[int] | None = None) -> list[Job]:
    query = select(Job).where(Job.state == JobState.queued)
    if clip_ids is not None:
        query = query.where(Job.clip_id.in_(clip_ids))
    return sorted(session.scalars(query), key=lambda j: (j.clip_id, STEP_ORDER.index(j.step)))


def clip_jobs(session: Session, clip_id: int) -> list[Job]:
    return sorted(
        session.scalars(select(Job).where(Job.clip_id == clip_id)),
        key=lambda j: STEP_ORDER.index(j.step),
    )


def broker_job_ids() -> set[int] | None:
    """Job ids of run-step messages waiting in (or held unacknowledged by) the broker.

    None when the broker cannot be read: callers then treat every stale job as lost, which is
    safe because a duplicate delivery finds its job already claimed and does nothing."""
    settings = get_settings()
    bodies: list[bytes] = []
    try:
        if settings.redis_url:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
            for queue in (QUEUE_CHEAP, QUEUE_MODEL):
                bodies += client.lrange(queue, 0, -1)
            bodies += [v[0] if isinstance(v, tuple) else v for v in client.hvals("unacked")]
        else:
            folder = settings.broker_dir / "queue"
            bodies += [p.read_bytes() for p in folder.glob("*.msg")]
    except Exception:
        log.warning("could not read the broker's queues", exc_info=True)
        return None
    found: set[int] = set()
    for raw in bodies:
        try:
            message = json.loads(raw)
            if isinstance(message, list):  # redis 'unacked' entries are [message, exchange, key]
                message = message[0]
            if message.get("headers", {}).get("task") != RUN_STEP_TASK:
                continue
            body = json.loads(base64.b64decode(message["body"]))
            found.add(int(body[0][0]))
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return found


def reconcile(session: Session, *, min_age: timedelta = timedelta(minutes=2)) -> list[int]:
    """Re-send jobs the broker lost (flushed, restarted) or whose worker died; returns their ids.

    Only the first queued step of each clip is sent (the runner chains the rest), and only
    when it has waited longer than ``min_age`` so messages in flight are not doubled. A job
    `running` whose heartbeat is silent for ``JOB_STALE_AFTER_S`` is re-sent whatever the
    broker holds: its message may sit unacknowledged for a dead worker until the visibility
    timeout (or was already redelivered and refused while the claim was fresh); the claim
    takes it over. The broker's queues are read only when some job waited that long."""
    now = utcnow()
    cutoff = now - min_age
    first_per_clip: dict[int, Job] = {}
    for job in queued_jobs(session):
        first_per_clip.setdefault(job.clip_id, job)
    waited = [job for job in first_per_clip.values() if job.queued_at < cutoff]
    in_broker = broker_job_ids() if waited else set()
    lost = [job for job in waited if in_broker is None or job.id not in in_broker]
    for job in lost:
        job.queued_at = now  # the next sweep waits min_age again before re-sending
    stale = session.scalars(select(Job).where(silent_since(stale_before(now)))).all()
    for job in [*lost, *stale]:
        enqueue(session, RUN_STEP_TASK, job.id, queue=get_step(job.step).queue)
    session.flush()
    return [job.id for job in [*lost, *stale]]


def broker_queue_depths() -> dict[str, int]:
    """Messages waiting per queue (Redis lists, or files of the embedded folder broker)."""
    settings = get_settings()
    try:
        if settings.redis_url:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
            return {q: int(client.llen(q)) for q in (QUEUE_CHEAP, QUEUE_MODEL)}
        return {"embedded": len(list((settings.broker_dir / "queue").glob("*.msg")))}
    except Exception:
        log.warning("could not read the broker's queue depth", exc_info=True)
        return {}
