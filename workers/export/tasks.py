"""Thin Celery task: build one export snapshot (idempotent: a claimed or finished one is left)."""

from __future__ import annotations

from app.export.build import run_build
from app.export.service import BUILD_TASK
from workers.celery_app import celery_app


@celery_app.task(name=BUILD_TASK, acks_late=True)
def build(snapshot_id: int) -> str:
    """Build the snapshot's archive; failures are recorded on the snapshot row."""
    return run_build(snapshot_id)
