"""Worker-level tasks that belong to no single pipeline step."""

from __future__ import annotations

from celery import Task

from app.core.errors import StorageUnavailable
from app.core.storage import DELETE_MEDIA_TASK, get_storage
from app.reconcile import reconcile_all
from workers.celery_app import backoff_s, celery_app


@celery_app.task(name="cellabel.ping")
def ping() -> str:
    """Round-trip check used by tests and `cellabel worker --check`."""
    return "pong"


@celery_app.task(name="cellabel.reconcile")
def reconcile() -> dict[str, object]:
    """Periodic: re-send lost or abandoned pipeline jobs and export builds, and the outbox;
    abort abandoned browser uploads."""
    report = reconcile_all()
    return {
        "jobs": report.jobs,
        "exports": report.exports,
        "uploads": report.uploads,
        "failed": report.sends.failed,
    }


@celery_app.task(name=DELETE_MEDIA_TASK, bind=True, acks_late=True, max_retries=None)
def delete_media(self: Task, key: str) -> None:
    """Remove media whose rows were deleted while the object store did not answer; retried
    with backoff until it does."""
    try:
        get_storage().delete_tree(key)
    except StorageUnavailable as exc:
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries)) from exc
