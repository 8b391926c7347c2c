"""Thin Celery tasks: take a job id, run the shared step runner, retry crashes with backoff."""

from __future__ import annotations

import socket

from celery import Task

from app.pipeline.runner import MAX_ATTEMPTS, run_job
from app.pipeline.service import RUN_STEP_TASK
from workers.celery_app import celery_app

WORKER_NAME = f"celery@{socket.gethostname()}"


@celery_app.task(name=RUN_STEP_TASK, bind=True, acks_late=True, max_retries=MAX_ATTEMPTS)
def run_step(self: Task, job_id: int) -> str | None:
    """Run one pipeline step; a crash is recorded on the job row and retried later."""
    try:
        state = run_job(job_id, worker=WORKER_NAME)
    except Exception as exc:
        raise self.retry(exc=exc, countdown=min(60, 5 * 2**self.request.retries)) from exc
    return state.value if state else None
