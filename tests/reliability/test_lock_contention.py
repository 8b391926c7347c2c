"""A request that waits too long for rows another transaction holds is told the records were
busy and to try again (a 503 "busy", which clients retry), not that the database is down."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.review.test_routes import _as, _staff_world

pytestmark = pytest.mark.postgres_only  # holds a table lock from a second connection


def test_a_lock_timeout_says_busy_and_the_retry_goes_through(
    client: TestClient, db: Session, engine: Engine
) -> None:
    world = _staff_world(db)
    headers = _as(client, db, world, "reviewer")
    track = world.node("track")
    db.execute(text("SET LOCAL lock_timeout = '300ms'"))  # the app's is 10 s
    db.commit()
    body = {"version": world.version("track"), "reason": "wrong_keypoint", "body": "wrist"}
    url = f"/api/review/track/{track.id}/reject"
    with engine.connect() as holder:
        holder.execute(text("LOCK TABLE review_comment IN SHARE MODE"))  # reads go on, no writes
        busy = client.post(url, json=body, headers=headers)
        holder.rollback()
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"] == "busy"
    assert "nothing was saved" in busy.json()["message"]
    assert "unavailable" not in busy.json()["message"]
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 201, again.text
