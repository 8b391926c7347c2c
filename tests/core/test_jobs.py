"""Tasks are sent only after the real commit, never when a SAVEPOINT is released."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.core import jobs


def test_tasks_wait_for_the_outer_commit_and_survive_a_savepoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(jobs, "send_now", lambda name, *args, queue="": sent.append((name, args)))
    session = Session(create_engine("sqlite://"))
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
    session.execute(text("select 1"))
    jobs.enqueue(session, "dropped", 3)
    session.rollback()
    session.commit()
    assert [name for name, _ in sent] == ["first", "second"]
