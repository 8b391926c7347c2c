"""The outbox: one row per task send, written in the transaction that asks for the task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, utcnow


class OutboxMessage(Base):
    """A task send that is not known to have reached the broker yet (see app.core.jobs)."""

    __tablename__ = "outbox_message"

    # Made by the client (uuid4 hex), so enqueue needs no flush to know it.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(120))
    args: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    queue: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Failed sends so far, and the last error: a row with attempts > 0 is known to be unsent.
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
