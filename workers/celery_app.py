"""The Celery application, configured from the same settings as the web."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from app.core.config import get_settings
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL, celery_config
from app.core.observability import configure_logging

MAX_BACKOFF_S = 60  # defined before autodiscovery imports the task modules using it


def backoff_s(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 5, 10, 20, ... up to a minute."""
    return min(MAX_BACKOFF_S, 5 * 2**retries)


settings = get_settings()
celery_app = Celery("cellabel")
celery_app.conf.update(celery_config(settings))
celery_app.conf.task_routes = {"cellabel.pipeline.model.*": {"queue": QUEUE_MODEL}}
celery_app.conf.task_queues = None
celery_app.conf.beat_schedule = {
    "reconcile-lost-jobs": {"task": "cellabel.reconcile", "schedule": settings.reconcile_every_s},
}
celery_app.autodiscover_tasks(
    ["workers", "workers.pipeline", "workers.export", "workers.agreement", "workers.clips"],
    related_name="tasks",
    force=True,
)

ALL_QUEUES = f"{QUEUE_CHEAP},{QUEUE_MODEL}"


@setup_logging.connect
def _json_logs(**_: Any) -> None:
    """Workers log JSON lines with the job id, like the web logs with the request id."""
    configure_logging()
