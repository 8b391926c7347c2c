"""Thin Celery task: list one bucket source (idempotent: a second listing adds nothing)."""

from __future__ import annotations

from app.clips.bucket_sources import SYNC_TASK
from app.clips.source_sync import run_sync
from app.core.errors import DomainError
from workers.celery_app import celery_app


@celery_app.task(name=SYNC_TASK, acks_late=True)
def sync_source(source_id: int) -> str:
    """New clip records for the source's new objects; failures are recorded on the source."""
    try:
        result = run_sync(source_id)
    except DomainError as exc:
        return f"failed: {exc.message}"
    return "gone" if result is None else f"{result.created} new of {result.listed}"
