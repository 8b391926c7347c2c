"""Thin Celery tasks: take a job id, run the shared step runner, retry crashes with backoff;
hand a bucket source's records to the pipeline."""

from __future__ import annotations

import socket

from celery import Task

from app.core.errors import StorageUnavailable
from app.pipeline.runner import MAX_ATTEMPTS, run_job
from app.pipeline.service import RUN_STEP_TASK
from app.pipeline.source_processing import PROCESS_SOURCE_TASK, run_processing
from workers.celery_app import backoff_s, celery_app

WORKER_NAME = f"celery@{socket.gethostname()}"


# max_retries=None: a store outage is retried for as long as it lasts (the job row stays
# `queued` with the store's error); crashes stop after MAX_ATTEMPTS (the runner fails them).
@celery_app.task(name=RUN_STEP_TASK, bind=True, acks_late=True, max_retries=None)
def run_step(self: Task, job_id: int) -> str | None:
    """Run one pipeline step; a crash is recorded on the job row and retried later."""
    try:
        # The node name (`-n`) tells apart workers that share a host name (containers, tests).
        state = run_job(job_id, worker=self.request.hostname or WORKER_NAME)
    except StorageUnavailable as exc:
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries)) from exc
    except Exception as exc:
        countdown = backoff_s(self.request.retries)
        raise self.retry(exc=exc, countdown=countdown, max_retries=MAX_ATTEMPTS) from exc
    return state.value if state else None


@celery_app.task(name=PROCESS_SOURCE_TASK, acks_late=True)
def process_source(source_id: int) -> str:
    """Hand a bucket source's waiting records to the pipeline (run again, it takes only those
    still waiting)."""
    return f"queued {run_processing(source_id)}"
