"""Worker-level tasks that belong to no single pipeline step."""

from __future__ import annotations

from workers.celery_app import celery_app


@celery_app.task(name="cellabel.ping")
def ping() -> str:
    """Round-trip check used by tests and `cellabel worker --check`."""
    return "pong"


@celery_app.task(name="cellabel.reconcile")
def reconcile() -> list[int]:
    """Periodic: re-send pipeline jobs that PostgreSQL has queued but the broker lost."""
    from app.core.db import session_scope
    from app.pipeline.service import reconcile as reconcile_jobs

    with session_scope() as session:
        return reconcile_jobs(session)
