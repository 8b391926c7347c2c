"""Thin Celery tasks for agreement: take ids, open a session, call the service (safe to rerun)."""

from __future__ import annotations

from celery import Task

from app.agreement.recompute import RECOMPUTE_TASK, ROLLUP_TASK, recompute_clip, recompute_rollups
from app.core.db import session_scope
from app.core.errors import NotFound
from workers.celery_app import celery_app

MAX_RETRIES = 5


def _retry(task: Task, exc: Exception) -> Exception:
    return task.retry(exc=exc, countdown=min(60, 5 * 2**task.request.retries))


@celery_app.task(name=RECOMPUTE_TASK, bind=True, acks_late=True, max_retries=MAX_RETRIES)
def recompute_clip_task(self: Task, clip_id: int) -> float | None:
    """Replace one clip's agreement rows; the rollups follow in their own task."""
    try:
        with session_scope() as session:
            return recompute_clip(session, clip_id).score
    except NotFound:
        return None  # the clip was deleted since: nothing to score
    except Exception as exc:
        raise _retry(self, exc) from exc


@celery_app.task(name=ROLLUP_TASK, bind=True, acks_late=True, max_retries=MAX_RETRIES)
def recompute_rollups_task(self: Task, project_id: int) -> int:
    """Replace one project's rollups (per project, batch and annotator)."""
    try:
        with session_scope() as session:
            return recompute_rollups(session, project_id)
    except NotFound:
        return 0
    except Exception as exc:
        raise _retry(self, exc) from exc
