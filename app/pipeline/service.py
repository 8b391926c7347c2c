"""Job rows and the step runner shared by Celery tasks, the CLI's `--wait` and tests.

PostgreSQL (not the broker) is the record: each (clip, step) has one :class:`Job` row. A step
is *claimed* atomically before it runs, so two deliveries of the same message (a redelivery
after a worker died, `--wait` racing a worker) never run it twice at once. While it runs the
job beats (``heartbeat_at``, every ``JOB_HEARTBEAT_S``); a `running` job silent for
``JOB_STALE_AFTER_S`` lost its worker and may be claimed again. Every claim raises
``attempts``, the fencing token: a run writes its result only while the row still carries its
attempt, so an original that was only slow (frozen, partitioned) and comes back after the
takeover has its result refused and rolled back. Steps are idempotent: they replace what an
earlier run of the same step wrote.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from app.clips.models import Clip, ClipState
from app.core.config import get_settings
from app.core.db import session_scope, utcnow
from app.core.heartbeat import heartbeat
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL, enqueue
from app.core.observability import job_id as job_context
from app.pipeline.models import Job, JobState

log = logging.getLogger(__name__)

RUN_STEP_TASK = "cellabel.pipeline.run_step"
MAX_ATTEMPTS = 3


class FencedOut(Exception):
    """This run's attempt no longer owns the job (another worker took it over)."""


class StepFailed(Exception):
    """A step cannot succeed for this clip (bad input): fail the job, do not retry."""

    def __init__(self, message: str, *, kind: str = "failed", fail_clip: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.fail_clip = fail_clip


@dataclass(frozen=True)
class Step:
    name: str
    queue: str
    run: Callable[[Session, Clip], dict[str, object]]
    applies: Callable[[Clip], bool] = lambda clip: True


_REGISTRY: dict[str, Step] = {}
STEP_ORDER = ("probe", "frames", "shots", "keypoints", "faces", "caption", "audio")


def register_step(
    name: str, *, model: bool = False, applies: Callable[[Clip], bool] | None = None
) -> Callable[[Callable[[Session, Clip], dict[str, object]]], Callable[..., dict[str, object]]]:
    """Decorator adding a step function ``fn(session, clip) -> result dict`` to the pipeline."""
    if name not in STEP_ORDER:
        raise ValueError(f"unknown step {name!r}")

    def decorate(
        fn: Callable[[Session, Clip], dict[str, object]],
    ) -> Callable[..., dict[str, object]]:
        _REGISTRY[name] = Step(
            name, QUEUE_MODEL if model else QUEUE_CHEAP, fn, applies or (lambda clip: True)
        )
        return fn

    return decorate


def steps() -> list[Step]:
    """Registered steps in pipeline order."""
    import app.pipeline.model_steps  # (registers the model-draft steps)
    import app.pipeline.steps  # noqa: F401  (registers the built-in steps)

    return [_REGISTRY[name] for name in STEP_ORDER if name in _REGISTRY]


def parse_steps(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    known = {s.name for s in steps()}
    unknown = [n for n in names if n not in known]
    if unknown:
        from app.core.errors import Invalid

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
        enqueue(session, RUN_STEP_TASK, jobs[0].id, queue=_step(jobs[0].step).queue)
    return jobs


def _step(name: str) -> Step:
    steps()
    return _REGISTRY[name]


def _silent_since(stale_before: datetime) -> ColumnElement[bool]:
    """A running job with no sign of life since ``stale_before``: its worker is gone."""
    last_sign = func.coalesce(Job.heartbeat_at, Job.started_at)
    return (Job.state == JobState.running) & (last_sign < stale_before)


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=get_settings().job_stale_after_s)


def claim(session: Session, job_id: int, worker: str) -> int | None:
    """Atomically move a queued (or silent running) job to running; returns the run's attempt
    number (its fencing token), or None if someone else has it or it is finished."""
    now = utcnow()
    stale_before = _stale_before(now)
    job = session.get(Job, job_id)
    if job is None or job.step not in STEP_ORDER:
        return None
    earlier = STEP_ORDER[: STEP_ORDER.index(job.step)]
    waiting_on = session.scalar(
        select(Job.id).where(
            Job.clip_id == job.clip_id,
            Job.step.in_(earlier),
            Job.state.in_((JobState.queued, JobState.running)),
        )
    )
    if waiting_on is not None:
        return None  # steps run in order: the earlier step's runner sends this one again
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, or_(Job.state == JobState.queued, _silent_since(stale_before)))
        .values(
            state=JobState.running,
            started_at=now,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            worker=worker,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(Job.attempts).where(Job.id == job_id))


def _owned(job_id: int, attempt: int) -> ColumnElement[bool]:
    return (Job.id == job_id) & (Job.attempts == attempt) & (Job.state == JobState.running)


def beat(job_id: int, attempt: int) -> bool:
    """Record that attempt ``attempt`` of the job is alive; False once it lost the job."""
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(_owned(job_id, attempt))
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _fence(session: Session, job_id: int, attempt: int) -> Job:
    """Lock the job row for this transaction if attempt ``attempt`` still owns it, else raise
    :class:`FencedOut` (the caller's scope then rolls back everything the run wrote)."""
    result = session.execute(
        update(Job)
        .where(_owned(job_id, attempt))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise FencedOut(f"job {job_id}: attempt {attempt} was taken over")
    job = session.get_one(Job, job_id)
    session.refresh(job)
    return job


def run_job(job_id: int, worker: str = "inline") -> JobState | None:
    """Run one claimed step to completion; returns the final state, or None if not claimed
    (or taken over while it ran: then nothing it did is kept).

    Raises the step's unexpected exception after recording it, so Celery can retry; the job
    goes back to `queued` while attempts remain, else `failed`.
    """
    with session_scope() as session:
        attempt = claim(session, job_id, worker)
    if attempt is None:
        log.info("job %s is taken or finished; nothing to do", job_id)
        return None
    token = job_context.set(str(job_id))
    try:
        with heartbeat(lambda: beat(job_id, attempt)):
            return run_claimed(job_id, attempt)
    finally:
        job_context.reset(token)


def run_claimed(job_id: int, attempt: int) -> JobState | None:
    """Run the step as attempt ``attempt``; every write of the outcome is fenced on it."""
    started = time.monotonic()
    try:
        return _run_fenced(job_id, attempt, started)
    except FencedOut as exc:
        log.warning("%s; its result is dropped", exc)
        return None


def _run_fenced(job_id: int, attempt: int, started: float) -> JobState:
    try:
        with session_scope() as session:
            job = session.get_one(Job, job_id)
            clip = session.get_one(Clip, job.clip_id)
            step = _step(job.step)
            if not step.applies(clip):
                result: dict[str, object] = {"skipped": "does not apply to this clip"}
            else:
                result = step.run(session, clip)
            job = _fence(session, job_id, attempt)
            job.state = JobState.done
            job.result = result
            job.error = None
            _finish(session, job, started)
            _advance(session, clip)
        return JobState.done
    except FencedOut:
        raise
    except StepFailed as exc:
        with session_scope() as session:
            job = _fence(session, job_id, attempt)
            job.state = JobState.failed
            job.error = exc.message
            _finish(session, job, started)
            clip = session.get_one(Clip, job.clip_id)
            if exc.fail_clip:
                _fail_clip(session, clip, exc.kind, exc.message)
            else:
                _advance(session, clip)
        return JobState.failed
    except Exception as exc:
        log.exception("step of job %s crashed", job_id)
        with session_scope() as session:
            job = _fence(session, job_id, attempt)
            job.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            retry = job.attempts < MAX_ATTEMPTS
            job.state = JobState.queued if retry else JobState.failed
            _finish(session, job, started)
            if not retry:
                _advance(session, session.get_one(Clip, job.clip_id))
        raise


def _finish(session: Session, job: Job, started: float) -> None:
    job.finished_at = utcnow()
    job.duration_s = round(time.monotonic() - started, 3)
    session.flush()
    log.info(  # one line per run, carrying the job id like every line logged inside the step
        "step %s of clip %s: %s",
        job.step,
        job.clip_id,
        job.state.value,
        extra={"step": job.step, "clip_id": job.clip_id, "seconds": job.duration_s},
    )


def _fail_clip(session: Session, clip: Clip, kind: str, message: str) -> None:
    clip.state = ClipState.failed
    clip.error_kind = kind
    clip.error = message
    session.execute(
        update(Job)
        .where(Job.clip_id == clip.id, Job.state == JobState.queued)
        .values(state=JobState.failed, error="Not run: an earlier step failed.")
        .execution_options(synchronize_session=False)
    )


def _advance(session: Session, clip: Clip) -> None:
    """Send the clip's next queued step, or settle the clip's state when none is left."""
    jobs = sorted(
        session.scalars(select(Job).where(Job.clip_id == clip.id)),
        key=lambda j: STEP_ORDER.index(j.step),
    )
    pending = [j for j in jobs if j.state in (JobState.queued, JobState.running)]
    if pending:
        nxt = pending[0]
        if nxt.state == JobState.queued:
            enqueue(session, RUN_STEP_TASK, nxt.id, queue=_step(nxt.step).queue)
        return
    if clip.state != ClipState.failed:
        clip.state = ClipState.ready


def queued_jobs(session: Session, clip_ids: Sequence[int] | None = None) -> list[Job]:
    query = select(Job).where(Job.state == JobState.queued)
    if clip_ids is not None:
        query = query.where(Job.clip_id.in_(clip_ids))
    return sorted(session.scalars(query), key=lambda j: (j.clip_id, STEP_ORDER.index(j.step)))


def run_queued_inline(
    clip_ids: Sequence[int] | None = None,
    progress: Callable[[Job], None] | None = None,
    timeout_s: float = 3600.0,
) -> int:
    """Embedded `--wait`: run queued steps in this process until none is queued or running.

    Steps another process is running (a worker beside `cellabel serve`) are waited for, so
    the call returns only when the clips have settled; returns how many steps ran here."""
    ran = 0
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope() as session:
            pending = queued_jobs(session, clip_ids)
            query = select(Job.id).where(Job.state == JobState.running)
            if clip_ids is not None:
                query = query.where(Job.clip_id.in_(clip_ids))
            elsewhere = session.scalar(query.limit(1)) is not None
        if not pending and not elsewhere:
            return ran
        progressed = False
        for job in pending:
            if progress:
                progress(job)
            try:
                state = run_job(job.id)
            except Exception:
                state = JobState.failed  # recorded on the job; a later loop may retry it
            if state is not None:
                ran += 1
                progressed = True
        if not progressed:
            if time.monotonic() > deadline:
                return ran
            time.sleep(0.5)


def clip_jobs(session: Session, clip_id: int) -> list[Job]:
    return sorted(
        session.scalars(select(Job).where(Job.clip_id == clip_id)),
        key=lambda j: STEP_ORDER.index(j.step),
    )


def broker_job_ids() -> set[int] | None:
    """Job ids of run-step messages waiting in (or held unacknowledged by) the broker.

    None when the broker cannot be read: callers then treat every stale job as lost, which is
    safe because a duplicate delivery finds its job already claimed and does nothing."""
    import base64
    import json as jsonlib

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
            message = jsonlib.loads(raw)
            if isinstance(message, list):  # redis 'unacked' entries are [message, exchange, key]
                message = message[0]
            if message.get("headers", {}).get("task") != RUN_STEP_TASK:
                continue
            body = jsonlib.loads(base64.b64decode(message["body"]))
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
    stale = session.scalars(select(Job).where(_silent_since(_stale_before(now)))).all()
    for job in [*lost, *stale]:
        enqueue(session, RUN_STEP_TASK, job.id, queue=_step(job.step).queue)
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
