"""Enqueue Celery tasks by name, only after the surrounding transaction commits.

``app/`` never imports ``workers/``: it sends task names through a producer configured from
the same settings the worker uses. Without REDIS_URL (embedded mode) the broker is a folder
queue under the data directory, consumed by the worker that ``cellabel serve`` starts.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings

log = logging.getLogger(__name__)

PENDING_KEY = "cellabel_pending_tasks"
QUEUE_CHEAP = "cheap"
QUEUE_MODEL = "model"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings shared by the producer here and the worker in workers/celery_app.py."""
    common: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": QUEUE_CHEAP,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "timezone": "UTC",
    }
    if settings.redis_url:
        return {
            **common,
            "broker_url": settings.redis_url,
            "broker_transport_options": {"visibility_timeout": 3600},
        }
    folder = settings.broker_dir
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        **common,
        "broker_url": "filesystem://localhost//",  # a host, or kombu warns on every connection
        "broker_transport_options": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        },
    }


def producer() -> Celery:
    """The Celery client for the broker the settings name now (one per broker URL)."""
    settings = get_settings()
    return _producer(settings.redis_url or str(settings.broker_dir))


@lru_cache
def _producer(broker: str) -> Celery:
    app = Celery("cellabel-producer")
    app.conf.update(celery_config(get_settings()))
    return app


def enqueue(session: Session, task_name: str, *args: Any, queue: str = QUEUE_CHEAP) -> None:
    """Send ``task_name(*args)`` once ``session`` commits; dropped if it rolls back."""
    session.info.setdefault(PENDING_KEY, []).append((task_name, args, queue))


def send_now(task_name: str, *args: Any, queue: str = QUEUE_CHEAP) -> str:
    result = producer().send_task(task_name, args=args, queue=queue)
    return str(result.id)


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    # Releasing a SAVEPOINT fires after_commit too: wait for the real commit, or a worker
    # could receive a job id its transaction cannot see yet.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(PENDING_KEY, [])
    for task_name, args, queue in pending:
        try:
            send_now(task_name, *args, queue=queue)
        except Exception:  # the reconciler re-sends jobs still queued in the database
            log.exception("could not send %s%r; the reconciler will retry", task_name, args)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a rolled-back SAVEPOINT: the outer transaction's work still stands
    session.info.pop(PENDING_KEY, None)
