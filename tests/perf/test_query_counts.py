"""Pages issue a fixed number of SQL statements however many rows they show (no N+1).

Each test renders a page, triples the rows behind it, renders it again and compares the
statement counts seen by a ``before_cursor_execute`` listener on the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from app.annotations.models import Character
from app.auth.models import Role
from app.batches import assignments, claims, sampling
from app.batches.models import AssignmentState
from app.batches.schemas import AssignConfig
from app.clips.models import Clip
from tests.factories import (
    create_batch,
    create_clip,
    create_model_draft,
    create_project,
    create_ready_clips,
    create_user,
    login,
)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def listen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def statements_for(engine: Engine, fetch: Callable[[], Any]) -> list[str]:
    """The statements one request issued, each shortened to its first line (for messages).

    The request is made once before counting: the tests share one session with the app, so
    the first request also loads the signed-in user into it.
    """
    fetch()
    with counted(engine) as seen:
        response = fetch()
    assert response.status_code == 200, response.text[:300]
    return [" ".join(s.split())[:90] for s in seen]


def test_clip_list_page_is_constant_in_the_number_of_clips(
    client: TestClient, db: Session, engine: Engine
) -> None:
    project = create_project(db)
    create_ready_clips(db, project, 5)
    login(client, db, create_user(db, Role.admin))
    page = lambda: client.get("/clips", params={"project": project.id})  # noqa: E731
    few = statements_for(engine, page)
    more = create_ready_clips(db, project, 30)
    many = statements_for(engine, page)
    assert len(many) == len(few), (few, many)
    text = page().text
    assert all(c.filename in text for c in more)


def test_annotator_queue_page_is_constant_in_the_number_of_assignments(
    client: TestClient, db: Session, engine: Engine
) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 12)
    annotator = create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[annotator.username]))
    claims.assign_clips(db, batch.id, annotator, 2)
    login(client, db, annotator)
    few = statements_for(engine, lambda: client.get("/queue"))
    claims.assign_clips(db, batch.id, annotator, 8)
    many = statements_for(engine, lambda: client.get("/queue"))
    response = client.get("/queue")
    assert len(many) == len(few), (few, many)
    # the page shows all ten of them
    shown = sum(
        f"/annotate/{a.id}" in response.text for a in assignments.own_assignments(db, annotator)
    )
    assert shown == 10


def test_workspace_load_is_constant_in_characters_and_frames(
    client: TestClient, db: Session, engine: Engine
) -> None:
    small = create_clip(db, frame_count=4)
    large = create_clip(db, frame_count=40)
    one = create_model_draft(db, small, frames=4, k=17)
    many = create_model_draft(db, large, frames=40, k=17)
    for _ in range(2):  # two more characters with their tracks on the large clip
        extra = create_model_draft(db, create_clip(db, frame_count=40), frames=40, k=17)
        moved = update(Character).where(Character.annotation_id == extra.id)
        db.execute(moved.values(annotation_id=many.id))
    db.flush()
    login(client, db, create_user(db, Role.admin))
    small_load = statements_for(engine, lambda: client.get(f"/api/annotations/{one.id}"))
    large_load = statements_for(engine, lambda: client.get(f"/api/annotations/{many.id}"))
    body = client.get(f"/api/annotations/{many.id}").json()
    assert len(body["characters"]) == 3
    assert sum(len(t["frames"]) for c in body["characters"] for t in c["tracks"]) == 120
    assert len(large_load) == len(small_load), (small_load, large_load)


def test_clip_list_pages_with_a_keyset(client: TestClient, db: Session) -> None:
    project = create_project(db)
    made = create_ready_clips(db, project, 130)
    login(client, db, create_user(db, Role.admin))
    first = client.get("/api/clips", params={"project_id": project.id, "limit": 100}).json()
    rest = client.get(
        "/api/clips", params={"project_id": project.id, "after": first[-1]["id"], "limit": 100}
    ).json()
    assert [c["id"] for c in first + rest] == sorted(c.id for c in made)
    assert db.get(Clip, made[0].id) is not None


def test_a_keypoint_save_is_five_statements_whatever_the_clip_size(
    client: TestClient, db: Session, engine: Engine
) -> None:
    """The hot path of the workspace: caller, track context, frame row, update, revision."""
    csrf = login(client, db, create_user(db, Role.admin))
    counts = []
    for frames in (4, 40):
        draft = create_model_draft(db, create_clip(db, frame_count=frames), frames=frames, k=17)
        track = client.get(f"/api/annotations/{draft.id}").json()["characters"][0]["tracks"][0]
        saver = FrameSaver(client, csrf, track["id"], track["frames"][1]["version"])
        counts.append(statements_for(engine, saver.save))
    assert len(counts[0]) == len(counts[1]) <= 5, counts


class FrameSaver:
    """Saves frame 1 of a 17-point track with a new position each time, tracking its version."""

    def __init__(self, client: TestClient, csrf: str, track_id: int, version: int) -> None:
        self.client, self.csrf, self.track_id, self.version = client, csrf, track_id, version
        self.x = 10.0

    def save(self) -> Any:
        self.x += 1
        response = self.client.put(
            f"/api/tracks/{self.track_id}/frames/1",
            json={"points": [[self.x, 20.0, 2]] * 17, "version": self.version},
            headers={"X-CSRF-Token": self.csrf},
        )
        if response.status_code == 200:
            self.version = response.json()[0]["version"]
        return response


def test_taking_the_next_clip_is_five_statements(db: Session, engine: Engine) -> None:
    """Lock the caller, look for their open clip, their batches, lock a free slot, seat them."""
    project = create_project(db)
    annotator = create_user(db, Role.annotator)
    batch = create_batch(db, project, create_ready_clips(db, project, 4))
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[annotator.username]))
    taken = []
    for _ in range(2):  # the first call may also sweep expired leases (at most every 15 s)
        with counted(engine) as seen:
            assignment = claims.next_clip(db, annotator)
        assert assignment is not None
        assignment.state = AssignmentState.submitted  # done: the next call takes a new clip
        db.flush()
        taken.append(assignment.clip_id)
    assert len(set(taken)) == 2
    assert len(seen) <= 5, seen
