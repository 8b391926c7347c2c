"""Tasks are recorded in the outbox with the work and sent only after the real commit."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from app.core import jobs
from app.core.models import OutboxMessage


def outbox_session() -> Session:
    engine = create_engine("sqlite://", poolclass=StaticPool)  # one in-memory database
    OutboxMessage.__table__.create(engine)  # type: ignore[attr-defined]
    return Session(engine)


def test_tasks_wait_for_the_outer_commit_and_survive_a_savepoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(jobs, "send_now", lambda name, *args, queue="": sent.append((name, args)))
    session = outbox_session()
    session.execute(text("select 1"))
    jobs.enqueue(session, "first", 1)
    with session.begin_nested():
        jobs.enqueue(session, "second", 2)
    assert sent == []  # releasing the savepoint sends nothing
    try:
        with session.begin_nested():
            raise RuntimeError("a duplicate, say")
    except RuntimeError:
        pass
    session.commit()
    assert sent == [("first", (1,)), ("second", (2,))]
    assert session.scalars(select(OutboxMessage)).all() == []  # sent rows are gone
    session.execute(text("select 1"))
    jobs.enqueue(session, "dropped", 3)
    session.rollback()
    session.commit()
    assert [name for name, _ in sent] == ["first", "second"]
    assert session.scalars(select(OutboxMessage)).all() == []


def test_a_send_that_fails_keeps_its_row_and_the_sweep_sends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker_up = False
    sent: list[str] = []

    def send(name: str, *args: object, queue: str = "") -> None:
        if not broker_up:
            raise ConnectionRefusedError("the broker is down")
        sent.append(name)

    monkeypatch.setattr(jobs, "send_now", send)
    session = outbox_session()
    jobs.enqueue(session, "recompute", 7)
    jobs.enqueue(session, "rollup", 1)
    session.commit()
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.task_name)).all()
    assert [(r.task_name, r.args, r.attempts) for r in rows] == [
        ("recompute", [7], 1), ("rollup", [1], 1),
    ]  # fmt: skip
    assert all("the broker is down" in (r.last_error or "") for r in rows)

    report = jobs.send_outbox(session)
    assert report.sent == [] and len(report.failed) == 2
    assert report.failed[0].startswith("recompute(7): ConnectionRefusedError")
    session.commit()

    broker_up = True
    report = jobs.send_outbox(session)
    session.commit()
    assert sorted(report.sent) == ["recompute(7)", "rollup(1)"] and report.failed == []
    assert sorted(sent) == ["recompute", "rollup"]
    assert session.scalars(select(OutboxMessage)).all() == []
