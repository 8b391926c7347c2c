"""Worker-level tasks that belong to no single pipeline step."""

from __future__ import annotations

from workers.celery_app import celery_app


@celery_app.task(name="cellabel.ping")
def ping() -> str:
    """Round-trip check used by tests and `cellabel worker --check`."""
    return "pong"
