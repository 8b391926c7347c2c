"""Batch pages, the annotator's queue and the JSON API, as a browser or a script sees them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.batches import claims, sampling
from app.batches.models import Assignment, AssignmentState, Batch, BatchClip, BatchMember
from app.batches.schemas import AssignConfig
from app.clips.models import ClipState
from tests.factories import (
    approve_truth,
    create_batch,
    create_clip,
    create_project,
    create_ready_clips,
    create_user,
    login,
)


def _bearer(db: Session, role: Role = Role.admin) -> tuple[dict[str, str], object]:
    user = create_user(db, role)
    _, token = auth_service.create_api_token(db, user, "script")
    return {"Authorization": f"Bearer {token}"}, user


def test_admin_builds_a_batch_from_the_form_with_a_live_count(
    client: TestClient, db: Session
) -> None:
    project = create_project(db)
    indoor = create_ready_clips(db, project, 3, source_tags={"venue": "indoor"})
    create_ready_clips(db, project, 2, source_tags={"venue": "outdoor"})
    csrf = login(client, db, create_user(db, Role.admin))
    page = client.get("/batches")
    assert page.status_code == 200 and 'hx-get="/batches/preview"' in page.text
    preview = client.get(
        "/batches/preview",
        params={"project_id": project.id, "tags": "venue=indoor"},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and re.search(r">3</strong> clips match", preview.text)
    bad = client.get("/batches/preview", params={"project_id": project.id, "tags": "oops"})
    assert "key=value" in bad.text
    created = client.post(
        "/batches",
        data={"name": "indoor", "project_id": project.id, "tags": "venue=indoor",
              "priority": 2, "due": "2030-01-31", "csrf_token": csrf},
    )  # fmt: skip
    assert created.status_code == 303
    batch = db.scalar(select(Batch).where(Batch.name == "indoor", Batch.project_id == project.id))
    assert batch is not None and created.headers["location"] == f"/batches/{batch.id}"
    assert batch.due_at is not None and batch.due_at.date().isoformat() == "2030-01-31"
    clip_ids = set(db.scalars(select(BatchClip.clip_id).where(BatchClip.batch_id == batch.id)))
    assert clip_ids == {c.id for c in indoor}
    empty = client.post(
        "/batches",
        data={"name": "none", "project_id": project.id, "tags": "venue=space", "csrf_token": csrf},
    )
    assert empty.status_code == 422 and "empty" in empty.text


def test_admin_assigns_with_overlap_and_gold_and_sees_progress(
    client: TestClient, db: Session
) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 10)
    for clip in create_ready_clips(db, project, 2):
        approve_truth(db, clip)
    a1, a2 = create_user(db, Role.annotator), create_user(db, Role.annotator)
    reviewer = create_user(db, Role.reviewer)
    batch = create_batch(db, project, clips)
    csrf = login(client, db, create_user(db, Role.admin))
    response = client.post(
        f"/batches/{batch.id}/assign",
        data={"annotators": [a1.username, a2.username], "reviewers": [reviewer.username],
              "overlap_k": 2, "overlap_pct": 30, "gold_pct": 20, "seed": 5, "csrf_token": csrf},
    )  # fmt: skip
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "3 clips overlapped, 2 gold clips" in page.text
    members = set(db.scalars(select(BatchMember.user_id).where(BatchMember.batch_id == batch.id)))
    assert members == {a1.id, a2.id, reviewer.id}
    fragment = client.get(f"/batches/{batch.id}/progress", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'hx-trigger="every 5s"' in fragment.text
    assert "<html" not in fragment.text and "12 clips (3 overlapped, 2 gold)" in fragment.text
    api = client.get(f"/api/batches/{batch.id}/progress").json()
    assert (api["clips"], api["gold_clips"], api["slots"]) == (12, 2, 15)


def test_annotator_queue_next_clip_redirects_to_the_workspace(
    client: TestClient, db: Session
) -> None:
    project = create_project(db)
    project.caption_guide = "Describe motion first."
    clips = create_ready_clips(db, project, 2)
    ann = create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(db, batch.id, AssignConfig(annotators=[ann.username]))
    csrf = login(client, db, ann)
    page = client.get("/queue")
    assert page.status_code == 200 and "Describe motion first." in page.text
    nxt = client.post("/queue/next", data={"csrf_token": csrf})
    assert nxt.status_code == 303
    assignment = db.scalar(select(Assignment).where(Assignment.annotator_id == ann.id))
    assert assignment is not None and nxt.headers["location"] == f"/annotate/{assignment.id}"
    # Pressing again before finishing returns the same clip.
    again = client.post("/queue/next", data={"csrf_token": csrf})
    assert again.headers["location"] == f"/annotate/{assignment.id}"
    assignment.state = AssignmentState.rejected
    db.flush()
    page = client.get("/queue")
    assert "1 item sent back by a reviewer waits for you" in page.text
    assert f'href="/annotate/{assignment.id}"' in page.text


def test_queue_api_hides_gold_and_others_assignments(client: TestClient, db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 1)
    truth = create_clip(db, project, state=ClipState.ready)
    approve_truth(db, truth)
    headers, ann = _bearer(db, Role.annotator)
    other_headers, other = _bearer(db, Role.annotator)
    batch = create_batch(db, project, clips)
    sampling.assign_batch(
        db, batch.id, AssignConfig(annotators=[ann.username, other.username], gold_pct=100)
    )
    got = client.post("/api/queue/next", headers=headers)
    assert got.status_code == 200
    body = got.json()
    assert "gold" not in str(body).lower() and body["url"] == f"/annotate/{body['id']}"
    theirs = client.post("/api/queue/next", headers=other_headers).json()
    assert {body["clip_id"], theirs["clip_id"]} == {clips[0].id, truth.id}
    assert client.get(f"/api/queue/assignments/{theirs['id']}", headers=headers).status_code == 404
    assert client.get(f"/api/assignments/{theirs['id']}", headers=headers).status_code == 404
    mine = client.get(f"/api/assignments/{body['id']}", headers=headers)
    assert mine.status_code == 200 and "is_gold" not in mine.json()
    empty = client.post("/api/queue/next", headers=other_headers)
    assert empty.status_code == 200  # their unfinished clip again
    listing = client.get("/api/queue", headers=headers).json()
    assert [item["id"] for item in listing] == [body["id"]]
    assert all("gold" not in key for item in listing for key in item)


def test_queue_api_says_clearly_when_nothing_waits(client: TestClient, db: Session) -> None:
    headers, _ = _bearer(db, Role.annotator)
    response = client.post("/api/queue/next", headers=headers)
    assert response.status_code == 404
    assert response.json()["message"].startswith("No clips are waiting")


def test_batch_api_create_assign_named_reassign_unassign(client: TestClient, db: Session) -> None:
    headers, _ = _bearer(db)
    project = create_project(db)
    clips = create_ready_clips(db, project, 4, subsets=["i2v"])
    a, b = create_user(db, Role.annotator), create_user(db, Role.annotator)
    preview = client.post(
        "/api/batches/preview",
        json={"project_id": project.id, "filter": {"subset": "i2v", "limit": 3}},
        headers=headers,
    )
    assert preview.json() == {"matching": 3}
    created = client.post(
        "/api/batches",
        json={"name": "api", "project_id": project.id, "filter": {"subset": "i2v"}},
        headers=headers,
    )
    assert created.status_code == 201
    batch_id = created.json()["id"]
    bad = client.post(
        "/api/batches", json={"name": "x", "project_id": project.id, "filter": {"subset": "gif"}},
        headers=headers,
    )  # fmt: skip
    assert bad.status_code == 422 and "subset" in bad.json()["message"]
    naive = client.post(
        "/api/batches",
        json={"name": "naive", "project_id": project.id, "due_at": "2030-01-31T12:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422 and "due_at" in naive.json()["message"]  # which zone?
    named = client.post(
        f"/api/batches/{batch_id}/assignments",
        json={"annotator": a.username, "count": 2},
        headers=headers,
    )
    assert named.status_code == 201
    first, second = named.json()
    assert [first["clip_id"], second["clip_id"]] == [clips[0].id, clips[1].id]
    moved = client.post(
        f"/api/assignments/{first['id']}/reassign", json={"annotator": b.username}, headers=headers
    )
    assert moved.status_code == 200 and moved.json()["annotator_id"] == b.id
    for url, body in (  # a blank username is refused, not a server error (found by fuzzing)
        (f"/api/assignments/{moved.json()['id']}/reassign", {"annotator": "   "}),
        (f"/api/batches/{batch_id}/assignments", {"annotator": " ", "count": 1}),
    ):
        blank = client.post(url, json=body, headers=headers)
        assert blank.status_code == 422 and blank.json()["message"] == "Give a username."
    again = client.post(
        f"/api/assignments/{first['id']}/reassign", json={"annotator": b.username}, headers=headers
    )
    assert again.status_code == 422 and "released" in again.json()["message"]
    gone = client.post(f"/api/assignments/{second['id']}/unassign", headers=headers)
    assert gone.json()["state"] == "released"
    listed = client.get(f"/api/batches/{batch_id}/assignments", headers=headers).json()
    assert {x["state"] for x in listed} == {"assigned", "released"}
    roles = {"annotators": [b.username], "reviewers": [a.username]}
    wrong_role = client.post(f"/api/batches/{batch_id}/assign", json=roles, headers=headers)
    assert wrong_role.status_code == 422 and a.username in wrong_role.json()["message"]


def test_admin_pages_reassign_and_unassign(client: TestClient, db: Session) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 2)
    a, b = create_user(db, Role.annotator), create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    first, second = claims.assign_clips(db, batch.id, a, 2)
    csrf = login(client, db, create_user(db, Role.admin))
    page = client.get(f"/batches/{batch.id}")
    assert page.status_code == 200 and f'data-assignment="{first.id}"' in page.text
    moved = client.post(
        f"/batches/{batch.id}/assignments/{first.id}/reassign",
        data={"annotator": b.username, "csrf_token": csrf},
    )
    assert (
        moved.status_code == 303
        and "Assignment moved" in client.get(moved.headers["location"]).text
    )
    client.post(f"/batches/{batch.id}/assignments/{second.id}/unassign", data={"csrf_token": csrf})
    db.refresh(first)
    db.refresh(second)
    assert (first.state, second.state) == (AssignmentState.released, AssignmentState.released)
    no_csrf = client.post(f"/batches/{batch.id}/assignments/{second.id}/unassign")
    assert no_csrf.status_code == 403


def test_the_queue_starts_a_clip_only_on_a_post(client: TestClient, db: Session) -> None:
    """Unstarted clips are listed with a Start button (a POST); claiming the next clip
    starts it; neither the queue page nor the workspace link changes anything."""
    project = create_project(db)
    clips = create_ready_clips(db, project, 2)
    ann = create_user(db, Role.annotator)
    batch = create_batch(db, project, clips)
    named = claims.assign_clips(db, batch.id, ann, 1)[0]
    csrf = login(client, db, ann)
    page = client.get("/queue")
    assert f'action="/annotate/{named.id}/start"' in page.text
    assert f'href="/annotate/{named.id}"' not in page.text
    db.refresh(named)
    assert named.state == AssignmentState.assigned and named.annotation_id is None
    claimed = client.post("/queue/next", data={"csrf_token": csrf})
    assert claimed.headers["location"] == f"/annotate/{named.id}"  # the unfinished one first
    db.refresh(named)
    assert named.state == AssignmentState.in_progress and named.annotation_id is not None
    assert f'href="/annotate/{named.id}"' in client.get("/queue").text
