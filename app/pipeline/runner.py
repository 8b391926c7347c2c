"""The step runner shared by Celery tasks, the CLI's `--wait` and tests: claim, run, record.

PostgreSQL (not the broker) is the record: each (clip, step) has one :class:`Job` row. A step
is *claimed* atomically before it runs, so two deliveries of the same message (a redelivery
after a worker died, `--wait` racing a worker) never run it twice at once. While it runs the
job beats (``heartbeat_at``, every ``JOB_HEARTBEAT_S``); a `running` job silent for
``JOB_STALE_AFTER_S`` lost its worker and may be claimed again. Every claim raises
``attempts``, the fencing token: a run writes its result only while the row still carries its
attempt, so an original that was only slow (frozen, partitioned) and comes back after the
takeover has its result refused and rolled back. Steps are idempotent: they replace what an
earlier run of the same step wrote. Runs open their own sessions (they are task bodies).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from app.clips.models import Clip, ClipState
from app.core.db import session_scope, utcnow
from app.core.errors import StorageUnavailable
from app.core.heartbeat import heartbeat, stale_before
from app.core.jobs import enqueue
from app.core.observability import job_id as job_context
from app.pipeline.models import Job, JobState
from app.pipeline.registry import STEP_ORDER, StepFailed
from app.pipeline.service import (
    RUN_STEP_TASK,
    get_step,
    queued_jobs,
    silent_since,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STORE_RETRY_NOTE = "Retryable: the step runs again by itself once the store answers."


class FencedOut(Exception):
    """This run's attempt no longer owns the job (another worker took it over)."""


def claim(session: Session, job_id: int, worker: str) -> int | None:
    """Atomically move a queued (or silent running) job to running; returns the run's attempt
    number (its fencing token), or None if someone else has it or it is finished."""
    now = utcnow()
    cutoff = stale_before(now)
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
        .where(Job.id == job_id, or_(Job.state == JobState.queued, silent_since(cutoff)))
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
    goes back to `queued` while attempts remain, else `failed`. An object store that does not
    answer (StorageUnavailable) puts the job back to `queued` whatever its attempts: the
    caller retries it with backoff until the store is back.
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
            step = get_step(job.step)
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
    except StorageUnavailable as exc:
        # Not the clip's fault and not a crash: the step went back to `queued` with nothing it
        # wrote kept (its transaction rolled back; frames publish their index last), and runs
        # again however long the outage lasts; the clip page shows why meanwhile.
        log.warning("step of job %s waits for the object store: %s", job_id, exc.message)
        with session_scope() as session:
            job = _fence(session, job_id, attempt)
            job.state = JobState.queued
            job.error = f"{exc.message} {STORE_RETRY_NOTE}"
            _finish(session, job, started)
        raise
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
            enqueue(session, RUN_STEP_TASK, nxt.id, queue=get_step(nxt.step).queue)
        return
    if clip.state != ClipState.failed:
        clip.state = ClipState.ready


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
