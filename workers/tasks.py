"""Worker-level tasks that belong to no single pipeline step."""

from __future__ import annotations

from app.reconcile import reconcile_all
from workers.celery_app import celery_app


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
