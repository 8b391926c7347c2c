"""The review API and queue page over HTTP: same rules as the service, clear 4xx bodies."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.review.workflow import reject
from tests.factories import create_user, login
from tests.review.test_service import World, build


def _as(client: TestClient, db: Session, world: World, who: str) -> dict[str, str]:
    return {"X-CSRF-Token": login(client, db, world.users[who])}


def _staff_world(db: Session) -> World:
    world = build(db)
    world.users["reviewer"] = create_user(db, Role.reviewer)  # one that can sign in
    return world


def test_reviewer_rejects_and_approves_through_the_api(client: TestClient, db: Session) -> None:
    world = _staff_world(db)
    headers = _as(client, db, world, "reviewer")
    doc = client.get(f"/api/annotations/{world.annotation.id}/review").json()
    assert doc["can_review"] is True
    track = next(n for n in doc["nodes"] if n["type"] == "track")
    assert len(doc["model"][str(track["id"])]["12"]) == 133
    url = f"/api/review/shot/{world.node('shot').id}/approve"
    ok = client.post(url, json={"version": world.version("shot")}, headers=headers)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    again = client.post(url, json={"version": ok.json()["version"]}, headers=headers)
    assert again.status_code == 403 and "only submitted items" in again.json()["message"]
    stale = client.post(
        f"/api/review/caption/{world.node('caption').id}/approve", json={"version": 99},
        headers=headers,
    )  # fmt: skip
    assert stale.status_code == 409 and stale.json()["detail"]["current_version"] >= 1
    gated = client.post(
        f"/api/review/annotation/{world.annotation.id}/approve",
        json={"version": world.version("annotation")}, headers=headers,
    )  # fmt: skip
    assert gated.status_code == 403 and "Parent gating" in gated.json()["message"]
    # the refusal names what is still open as the review panel does, not by database ids
    labels = {f"{n['type']}:{n['id']}": n["label"] for n in doc["nodes"]}
    pending = gated.json()["detail"]["pending"]
    assert "approve every item under the clip first" in gated.json()["message"]
    for item in pending[:5]:
        assert labels[f"{item['type']}:{item['id']}"] in gated.json()["message"]
    assert f"character {world.node('character').id}" not in gated.json()["message"]
    rejected = client.post(
        f"/api/review/track/{track['id']}/reject",
        json={"version": track["version"], "reason": "wrong_keypoint", "body": "wrist",
              "frame": 12, "point": 9},
        headers=headers,
    )  # fmt: skip
    assert rejected.status_code == 201
    assert (rejected.json()["frame_index"], rejected.json()["point_index"]) == (12, 9)
    assert client.get(f"/api/review/queue?annotator={world.users['owner'].id}").json() == []


def test_bad_input_is_a_422_and_annotators_cannot_review(client: TestClient, db: Session) -> None:
    world = _staff_world(db)
    headers = _as(client, db, world, "reviewer")
    url = f"/api/review/track/{world.node('track').id}/reject"
    missing = client.post(url, json={"version": 1, "reason": "other"}, headers=headers)
    assert missing.status_code == 422
    caption_url = f"/api/review/caption/{world.node('caption').id}/reject"
    unfit = client.post(caption_url, json={"version": world.version("caption"),
                        "reason": "wrong_keypoint", "body": "x"}, headers=headers)  # fmt: skip
    assert unfit.status_code == 422 and "for a caption" in unfit.json()["message"]
    assert "wording" in unfit.json()["detail"]["reasons"]
    bad_type = client.post("/api/review/clip/1/approve", json={"version": 1}, headers=headers)
    assert bad_type.status_code == 422
    owner = create_user(db, Role.annotator)
    headers = {"X-CSRF-Token": login(client, db, owner)}
    refused = client.post(url, json={"version": 1, "reason": "other", "body": "x"}, headers=headers)
    assert refused.status_code == 403


def test_annotator_replies_and_restores_through_the_api(client: TestClient, db: Session) -> None:
    world = build(db)
    world.users["owner"] = owner = create_user(db, Role.annotator)
    world.annotation.annotator_id = owner.id
    world.assignment.annotator_id = owner.id
    caption = world.node("caption")
    comment = reject(db, world.users["reviewer"], "caption", caption.id, caption.version,
                     "caption_inaccurate", "Too vague.")  # fmt: skip
    headers = _as(client, db, world, "owner")
    early = client.post(f"/api/annotations/{world.annotation.id}/submit", headers=headers)
    assert early.status_code == 403 and "Fix or answer" in early.json()["message"]
    answer = client.post(f"/api/review/comments/{comment.id}/replies", json={"body": "Fixed"},
                         headers=headers)  # fmt: skip
    assert answer.status_code == 201 and answer.json()["parent_id"] == comment.id
    resolve = client.post(f"/api/review/comments/{comment.id}/resolve", json={"resolved": True},
                          headers=headers)  # fmt: skip
    assert resolve.status_code == 403
    caption_id = world.node("caption").id
    for text in ("One.", "Two."):
        client.put(f"/api/captions/{caption_id}", json={"text": text,
                   "version": world.version("caption")}, headers=headers)  # fmt: skip
    history = client.get(f"/api/review/history/caption/{caption_id}").json()
    edits_only = [r for r in history if r["action"] == "update"]
    assert [r["after"]["text"] for r in edits_only] == ["One.", "Two."]
    assert any(r["action"] == "status" and r["comment"] == "caption_inaccurate" for r in history)
    diff = client.get(f"/api/review/revisions/{edits_only[0]['id']}/diff/{edits_only[1]['id']}")
    assert diff.json()["changes"] == [{"field": "text", "a": "One.", "b": "Two."}]
    restored = client.post(f"/api/review/revisions/{edits_only[0]['id']}/restore",
                           json={"version": world.version("caption")}, headers=headers)  # fmt: skip
    assert restored.status_code == 200 and restored.json()[0]["action"] == "restore"
    assert world.node("caption").text == "One."
    assert client.post(f"/api/annotations/{world.annotation.id}/submit",
                       headers=headers).status_code == 200  # fmt: skip


def test_review_queue_page_filters_with_htmx(client: TestClient, db: Session) -> None:
    world = _staff_world(db)
    login(client, db, world.users["reviewer"])
    page = client.get("/review")
    assert page.status_code == 200 and 'id="review-filters"' in page.text
    assert f'data-annotation="{world.annotation.id}"' in page.text
    partial = client.get(
        f"/review?annotator={world.users['other_annotator'].id}&batch=&age=&rejections=",
        headers={"HX-Request": "true"},
    )
    assert partial.status_code == 200 and "<html" not in partial.text
    assert f'data-annotation="{world.annotation.id}"' not in partial.text
    assert client.get("/review?age=soon").status_code == 422
