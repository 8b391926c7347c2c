"""Worker-level tasks that belong to no single pipeline step."""

from __future__ import annotations

from workers.celery_app import celery_app


@celery_app.task(name="cellabel.ping")
def ping() -> str:
    """Round-trip check used by tests and `cellabel worker --check`."""
    return "pong"


@celery_app.task(name="cellabel.reconcile")
def reconcile() -> dict[str, list[int]]:
    """Periodic: re-send pipeline jobs that PostgreSQL has queued but the broker lost, and
    export builds whose worker died."""
    from app.core.db import session_scope
    from app.export.service import reconcile_exports
    from app.pipeline.service import reconcile as reconcile_jobs

    with session_scope() as session:
        return {"jobs": reconcile_jobs(session), "exports": reconcile_exports(session)}
