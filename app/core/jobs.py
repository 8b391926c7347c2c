"""Enqueue Celery tasks by name through an outbox: a row first, the send after commit.

``app/`` never imports ``workers/``: it sends task names through a producer configured from
the same settings the worker uses. Without REDIS_URL (embedded mode) the broker is a folder
queue under the data directory, consumed by the worker that ``cellabel serve`` starts.

Every send (pipeline steps, export builds, agreement recomputes and rollups) goes through one
outbox. :func:`enqueue` adds an :class:`~app.core.models.OutboxMessage` row in the caller's
transaction, so the row exists exactly when the work that asked for the task committed; after
the commit the task is sent and its row deleted. A send that fails (broker down) leaves its
row, marked with the error, and a process that dies between commit and send leaves it too:
the reconciler (:func:`send_outbox`, run by ``cellabel reconcile`` and the periodic task)
sends what is left. Tasks are idempotent, so the rare duplicate send is harmless.

Why a generic row and not the pipeline's :class:`Job` shape: a job row is one (clip, step)
with its claim, attempts and result, and only the pipeline has one; a recompute or a rollup
has no row of its own and an export has its snapshot. The outbox records the one fact they
share, "this task must still reach the broker", so a single sender and a single reconciler
serve every task; the job and snapshot rows keep recording the work itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from celery import Celery
from sqlalchemy import Engine, delete, event, or_, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.db import utcnow
from app.core.models import OutboxMessage

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


class PendingTask(NamedTuple):
    task_name: str
    args: tuple[Any, ...]
    queue: str
    message_id: str


@dataclass
class SendReport:
    """What a sweep of the outbox sent and what it could not send (with why)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def describe(task_name: str, args: Sequence[Any]) -> str:
    """``task(1, 2)``: how a send is named in logs and in `cellabel reconcile`'s report."""
    return f"{task_name}({', '.join(map(repr, args))})"


def enqueue(session: Session, task_name: str, *args: Any, queue: str = QUEUE_CHEAP) -> None:
    """Record ``task_name(*args)`` in the outbox; it is sent once ``session`` commits."""
    message_id = uuid.uuid4().hex
    session.add(OutboxMessage(id=message_id, task_name=task_name, args=list(args), queue=queue))
    session.info.setdefault(PENDING_KEY, []).append(PendingTask(task_name, args, queue, message_id))


def send_now(task_name: str, *args: Any, queue: str = QUEUE_CHEAP) -> str:
    """Send straight to the broker, with no outbox row: only for callers that keep their own
    record of the task (tests); everything else goes through :func:`enqueue`."""
    result = producer().send_task(task_name, args=args, queue=queue)
    return str(result.id)


def _send(tasks: Sequence[PendingTask]) -> tuple[list[PendingTask], list[PendingTask], str]:
    """Send in order; after the first failure the broker is taken as down and the rest are not
    tried (each try waits on its connection retries). Returns (sent, unsent, error)."""
    for n, task in enumerate(tasks):
        try:
            send_now(task.task_name, *task.args, queue=task.queue)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "could not send %s (%s); its outbox row stays for the reconciler",
                describe(task.task_name, task.args), error,
            )  # fmt: skip
            return list(tasks[:n]), list(tasks[n:]), error
    return list(tasks), [], ""


def send_outbox(session: Session, *, min_age: timedelta = timedelta(minutes=2)) -> SendReport:
    """Send the outbox rows left behind: every row whose send failed, and rows older than
    ``min_age`` (their process died between commit and send; younger ones may be in flight).
    Sent rows are deleted, unsent ones keep their error; the caller commits."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(or_(OutboxMessage.attempts > 0, OutboxMessage.created_at < utcnow() - min_age))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .with_for_update(skip_locked=True)  # two reconcilers never send one row twice
    ).all()
    tasks = [PendingTask(r.task_name, tuple(r.args), r.queue, r.id) for r in rows]
    sent, unsent, error = _send(tasks)
    by_id = {r.id: r for r in rows}
    for task in sent:
        session.delete(by_id[task.message_id])
    for task in unsent:
        by_id[task.message_id].attempts += 1
        by_id[task.message_id].last_error = error
    session.flush()
    return SendReport(
        sent=[describe(t.task_name, t.args) for t in sent],
        failed=[f"{describe(t.task_name, t.args)}: {error}" for t in unsent],
    )


def _settle_rows(bind: Any, sent: list[PendingTask], unsent: list[PendingTask], error: str) -> None:
    """After-commit bookkeeping on a connection of its own (the session cannot run SQL now)."""
    if not isinstance(bind, Engine):
        return  # a session joined to an outer connection (tests): its rows go with it
    try:
        with bind.begin() as connection:
            if sent:
                ids = [t.message_id for t in sent]
                connection.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
            if unsent:
                connection.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([t.message_id for t in unsent]))
                    .values(attempts=OutboxMessage.attempts + 1, last_error=error)
                )
    except Exception:  # rows left as they were are re-sent by the reconciler after min_age
        log.warning("could not update the outbox after sending", exc_info=True)


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    # Releasing a SAVEPOINT fires after_commit too: wait for the real commit, or a worker
    # could receive a job id its transaction cannot see yet.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(PENDING_KEY, [])
    if pending:
        sent, unsent, error = _send(pending)
        _settle_rows(session.get_bind(), sent, unsent, error)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a rolled-back SAVEPOINT: the outer transaction's work still stands
    session.info.pop(PENDING_KEY, None)
