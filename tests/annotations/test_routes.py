"""The workspace's HTTP surface: JSON saves with 409s, HTMX forms with visible conflicts."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, Caption, NodeStatus
from app.annotations.node_edits import update_caption
from app.annotations.opening import open_assignment
from app.annotations.payload import annotation_payload
from app.auth.models import Role
from app.batches import assignments
from app.batches.models import Assignment, BatchClip
from tests.factories import create_assignment, create_clip, create_user, login


def test_looking_at_an_assignment_changes_nothing_until_start_is_posted(
    client: TestClient, db: Session
) -> None:
    _, user, assignment = create_assignment(db)
    csrf = login(client, db, user)
    page = client.get(f"/annotate/{assignment.id}")
    assert page.status_code == 200 and 'id="workspace"' not in page.text
    assert f'action="/annotate/{assignment.id}/start"' in page.text
    db.refresh(assignment)
    assert assignment.state.value == "assigned" and assignment.annotation_id is None
    forged = client.post(f"/annotate/{assignment.id}/start", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    started = client.post(f"/annotate/{assignment.id}/start", data={"csrf_token": csrf})
    assert started.status_code == 303
    assert started.headers["location"] == f"/annotate/{assignment.id}"
    db.refresh(assignment)
    assert assignment.state.value == "in_progress" and assignment.annotation_id is not None
    workspace = client.get(f"/annotate/{assignment.id}")
    assert workspace.status_code == 200 and 'id="workspace"' in workspace.text
    admin_csrf = login(client, db, create_user(db, Role.admin))
    refused = client.post(f"/annotate/{assignment.id}/start", data={"csrf_token": admin_csrf})
    assert refused.status_code == 403  # only the annotator starts their own work


def test_an_admin_looking_at_an_unstarted_assignment_starts_nothing(
    client: TestClient, db: Session
) -> None:
    _, user, assignment = create_assignment(db)
    login(client, db, create_user(db, Role.admin))
    page = client.get(f"/annotate/{assignment.id}")
    assert page.status_code == 200 and f"{user.username} has not started" in page.text
    assert "/start" not in page.text
    db.refresh(assignment)
    assert assignment.state.value == "assigned" and assignment.annotation_id is None


def test_another_annotator_cannot_open_or_read_it(client: TestClient, db: Session) -> None:
    _, user, assignment = create_assignment(db)
    annotation = open_assignment(db, user, assignment.id)[1]
    login(client, db, create_user(db, Role.annotator))
    assert client.get(f"/annotate/{assignment.id}").status_code == 404
    assert client.get(f"/api/annotations/{annotation.id}").status_code == 404


def test_frame_save_conflict_is_a_409_with_the_current_version(
    client: TestClient, db: Session
) -> None:
    _, user, assignment = create_assignment(db)
    _, annotation = open_assignment(db, user, assignment.id)
    csrf = login(client, db, user)
    payload = client.get(f"/api/annotations/{annotation.id}").json()
    track = payload["characters"][0]["tracks"][0]
    frame = track["frames"][1]
    points = [p[:3] for p in frame["points"]]
    points[9] = [101.0, 77.0, 2]
    url = f"/api/tracks/{track['id']}/frames/1"
    ok = client.put(
        url, json={"points": points, "version": frame["version"]}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 200 and ok.json()[0]["points"][9][:2] == [101.0, 77.0]
    points[9] = [5.0, 5.0, 2]
    stale = client.put(
        url, json={"points": points, "version": frame["version"]}, headers={"X-CSRF-Token": csrf}
    )
    assert stale.status_code == 409
    assert stale.json()["detail"]["current"]["points"][9][:2] == [101.0, 77.0]
    bad = client.put(url, json={"points": [[1, 2]], "version": 2}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422


def test_caption_conflict_shows_both_texts(client: TestClient, db: Session) -> None:
    _, user, assignment = create_assignment(db)
    _, annotation = open_assignment(db, user, assignment.id)
    caption = annotation_payload(db, annotation)["captions"][0]
    update_caption(db, user, caption["id"], "their text", caption["version"])
    csrf = login(client, db, user)
    response = client.post(
        f"/annotations/captions/{caption['id']}",
        data={"text": "my <b>text</b>", "version": caption["version"], "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 409
    assert "their text" in response.text and "my &lt;b&gt;text&lt;/b&gt;" in response.text


def test_the_workspace_names_the_next_clip_so_its_frames_are_fetched_ahead(
    client: TestClient, db: Session
) -> None:
    clip, user, assignment = create_assignment(db)
    other = create_clip(db, subsets=["pose"], frame_count=9, width=320, height=240, state="ready")
    slot = BatchClip(
        batch_id=db.get_one(BatchClip, assignment.batch_clip_id).batch_id, clip_id=other.id
    )
    db.add(slot)
    db.flush()
    db.add(Assignment(batch_clip_id=slot.id, clip_id=other.id, annotator_id=user.id))
    db.flush()
    open_assignment(db, user, assignment.id)
    login(client, db, user)
    page = client.get(f"/annotate/{assignment.id}")
    assert f'data-next-clip="{other.id}" data-next-count="9"' in page.text
    assert f'data-next-clip="{clip.id}"' not in page.text


def test_emotion_quality_and_speech_panels_save_and_show_conflicts(
    client: TestClient, db: Session
) -> None:
    clip, user, assignment = create_assignment(db)
    clip.duration_s = 1.0
    _, annotation = open_assignment(db, user, assignment.id)
    character = annotation_payload(db, annotation)["characters"][0]
    csrf = login(client, db, user)
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    emotions = client.post(
        f"/annotations/characters/{character['id']}/emotions",
        data={"version": character["version"], "start": ["0", ""], "end": ["3", ""],
              "label": ["awe", ""]},
        headers=hx,
    )  # fmt: skip
    assert emotions.status_code == 200 and "saved" in emotions.text
    quality = client.post(
        f"/annotations/{annotation.id}/quality",
        data={"version": annotation.version, "keep": "discard", "other": "too dark"},
        headers=hx,
    )
    assert quality.status_code == 200
    stale = client.post(
        f"/annotations/{annotation.id}/quality",
        data={"version": 1, "keep": "keep"},
        headers=hx,
    )
    assert stale.status_code == 409 and "error-box" in stale.text
    speech = client.post(
        f"/annotations/{annotation.id}/speech",
        data={"action": "add", "start_s": "0.1", "end_s": "0.6", "transcript": "hi"},
        headers=hx,
    )
    assert speech.status_code == 200 and 'value="hi"' in speech.text
    db.refresh(annotation)
    assert annotation.quality == {"keep": False, "reasons": ["too dark"]}


def _writes(annotation_id: int, payload: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per kind of write on an annotation and its children (method, url, json)."""
    character = payload["characters"][0]
    track = character["tracks"][0]
    caption = payload["captions"][0]
    points = [p[:3] for p in track["frames"][1]["points"]]
    return [
        ("PUT", f"/api/captions/{caption['id']}", {"text": "mine now", "version": 1}),
        ("PUT", f"/api/tracks/{track['id']}/frames/1", {"points": points, "version": 1}),
        ("POST", f"/api/tracks/{track['id']}/interpolate", {"start": 0, "end": 3}),
        ("POST", f"/api/tracks/{track['id']}/accept", {"threshold": 0.1}),
        ("POST", f"/api/tracks/{track['id']}/track", {"frame": 0, "version": 1}),
        ("PUT", f"/api/annotations/{annotation_id}/tags", {"tags": {}, "version": 1}),
        ("PUT", f"/api/annotations/{annotation_id}/shots", {"starts": [0], "version": 1}),
        ("POST", f"/api/annotations/{annotation_id}/characters",
         {"name": "x", "kind": "humanoid", "skeleton": "coco17"}),
        ("DELETE", f"/api/characters/{character['id']}?version=1", {}),
        ("POST", f"/api/annotations/{annotation_id}/submit", {}),
    ]  # fmt: skip


def test_writes_to_someone_elses_annotation_answer_404_like_reads(
    client: TestClient, db: Session
) -> None:
    _, owner, assignment = create_assignment(db)
    _, annotation = open_assignment(db, owner, assignment.id)
    payload = annotation_payload(db, annotation)
    csrf = login(client, db, create_user(db, Role.annotator))
    headers = {"X-CSRF-Token": csrf}
    for method, url, body in _writes(annotation.id, payload):
        response = client.request(method, url, json=body or None, headers=headers)
        assert response.status_code == 404, (method, url, response.text)
    form = client.post(
        f"/annotations/captions/{payload['captions'][0]['id']}",
        data={"text": "mine", "version": 1, "csrf_token": csrf},
    )
    assert form.status_code == 404
    assert db.get_one(Annotation, annotation.id).version == annotation.version


def test_the_owner_is_told_why_a_submitted_annotation_cannot_change(
    client: TestClient, db: Session
) -> None:
    _, owner, assignment = create_assignment(db)
    _, annotation = open_assignment(db, owner, assignment.id)
    annotation.status = NodeStatus.submitted
    db.flush()
    caption = annotation_payload(db, annotation)["captions"][0]
    csrf = login(client, db, owner)
    response = client.put(
        f"/api/captions/{caption['id']}",
        json={"text": "late", "version": caption["version"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 403 and "submitted" in response.json()["message"]


def test_after_a_reassignment_the_first_annotator_reaches_nothing_of_the_clip(
    client: TestClient, db: Session
) -> None:
    clip, first, assignment = create_assignment(db)
    _, annotation = open_assignment(db, first, assignment.id)
    payload = annotation_payload(db, annotation)
    caption = payload["captions"][0]
    csrf = login(client, db, first)
    headers = {"X-CSRF-Token": csrf}
    assert client.get(f"/api/annotations/{annotation.id}").status_code == 200
    assert client.get(f"/api/clips/{clip.id}").status_code == 200
    second = create_user(db, Role.annotator)
    moved = assignments.reassign(db, assignment.id, second)
    reads = [f"/api/annotations/{annotation.id}", f"/annotations/{annotation.id}",
             f"/api/annotations/{annotation.id}/review", f"/api/clips/{clip.id}",
             f"/media/clips/{clip.id}/thumb.jpg"]  # fmt: skip
    for url in reads:
        assert client.get(url).status_code == 404, url
    released = client.get(f"/annotate/{assignment.id}")
    assert released.status_code == 403 and "released" in released.text
    for method, url, body in _writes(annotation.id, payload):
        response = client.request(method, url, json=body or None, headers=headers)
        assert response.status_code == 404, (method, url, response.text)
    saved = client.post(
        f"/annotations/captions/{caption['id']}",
        data={"text": "still mine?", "version": caption["version"], "csrf_token": csrf},
    )
    assert saved.status_code == 404
    db.refresh(db.get_one(Caption, caption["id"]))
    assert db.get_one(Caption, caption["id"]).text == caption["text"]
    # The second annotator starts their own copy and works on it.
    csrf = login(client, db, second)
    started = client.post(f"/annotate/{moved.id}/start", data={"csrf_token": csrf})
    assert started.status_code == 303
    db.refresh(moved)
    assert moved.annotation_id not in (None, annotation.id)
    assert client.get(f"/api/annotations/{moved.annotation_id}").status_code == 200
    assert client.get(f"/api/annotations/{annotation.id}").status_code == 404


def test_a_character_with_the_projects_own_skeleton(client: TestClient, db: Session) -> None:
    clip, user, assignment = create_assignment(db)
    admin_csrf = login(client, db, create_user(db, Role.admin))
    fish = {"name": "fish", "keypoints": ["head", "fin", "tail"],
            "edges": [["head", "fin"], ["fin", "tail"]],
            "parts": {"front": ["head"], "back": ["fin", "tail"]}}  # fmt: skip
    url = f"/api/projects/{clip.project_id}/skeletons"
    for bad_part in ("<img src=x onerror=alert(1)>", "a" * 65, "\u202eevil", ""):
        refused = client.post(
            url,
            json={**fish, "parts": {"front": [0], bad_part: [1, 2]}},
            headers={"X-CSRF-Token": admin_csrf},
        )
        assert refused.status_code == 422, bad_part
    assert "plain name" in refused.json()["message"]
    long_name = client.post(
        url, json={**fish, "name": "f" * 65}, headers={"X-CSRF-Token": admin_csrf}
    )
    assert long_name.status_code == 422 and "at most 64" in long_name.json()["message"]
    saved = client.post(url, json=fish, headers={"X-CSRF-Token": admin_csrf})
    assert saved.status_code == 201, saved.text
    _, annotation = open_assignment(db, user, assignment.id)
    csrf = login(client, db, user)
    headers = {"X-CSRF-Token": csrf}
    made = client.post(
        f"/api/annotations/{annotation.id}/characters",
        json={"name": "Nemo", "kind": "animal", "skeleton": "fish"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    body = client.get(f"/api/annotations/{annotation.id}").json()
    nemo = next(c for c in body["characters"] if c["id"] == made.json()["id"])
    assert nemo["skeleton"] == "fish" and nemo["tracks"][0]["num_points"] == 3
    assert body["skeletons"]["fish"]["keypoints"] == ["head", "fin", "tail"]
    frame = client.put(
        f"/api/tracks/{nemo['tracks'][0]['id']}/frames/2",
        json={"points": [[10, 10, 2], [20, 12, 2], [30, 14, 1]], "version": 1},
        headers=headers,
    )
    assert frame.status_code == 200, frame.text
    unknown = client.post(
        f"/api/annotations/{annotation.id}/characters",
        json={"name": "Dory", "kind": "animal", "skeleton": "shark"},
        headers=headers,
    )
    assert unknown.status_code == 404 and "shark" in unknown.json()["message"]
