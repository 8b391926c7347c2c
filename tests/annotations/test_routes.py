"""The workspace's HTTP surface: JSON saves with 409s, HTMX forms with visible conflicts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotations import service
from app.auth.models import Role
from app.batches.models import Assignment, Batch, BatchClip
from tests.factories import create_clip, create_model_draft, create_user, login


def _assigned(db: Session):  # type: ignore[no-untyped-def]
    clip = create_clip(db, subsets=["pose"], frame_count=4, width=320, height=240, state="ready")
    create_model_draft(db, clip, frames=4)
    user = create_user(db, Role.annotator)
    batch = Batch(project_id=clip.project_id, name="b")
    db.add(batch)
    db.flush()
    slot = BatchClip(batch_id=batch.id, clip_id=clip.id)
    db.add(slot)
    db.flush()
    assignment = Assignment(batch_clip_id=slot.id, clip_id=clip.id, annotator_id=user.id)
    db.add(assignment)
    db.flush()
    return clip, user, assignment


def test_opening_the_workspace_starts_the_assignment(client: TestClient, db: Session) -> None:
    _, user, assignment = _assigned(db)
    login(client, db, user)
    page = client.get(f"/annotate/{assignment.id}")
    assert page.status_code == 200 and 'id="workspace"' in page.text
    db.refresh(assignment)
    assert assignment.state.value == "in_progress" and assignment.annotation_id is not None


def test_another_annotator_cannot_open_or_read_it(client: TestClient, db: Session) -> None:
    _, user, assignment = _assigned(db)
    annotation = service.open_assignment(db, user, assignment.id)[1]
    login(client, db, create_user(db, Role.annotator))
    assert client.get(f"/annotate/{assignment.id}").status_code == 404
    assert client.get(f"/api/annotations/{annotation.id}").status_code == 404


def test_frame_save_conflict_is_a_409_with_the_current_version(
    client: TestClient, db: Session
) -> None:
    _, user, assignment = _assigned(db)
    _, annotation = service.open_assignment(db, user, assignment.id)
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
    _, user, assignment = _assigned(db)
    _, annotation = service.open_assignment(db, user, assignment.id)
    caption = service.annotation_payload(db, annotation)["captions"][0]
    service.update_caption(db, user, caption["id"], "their text", caption["version"])
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
    clip, user, assignment = _assigned(db)
    other = create_clip(db, subsets=["pose"], frame_count=9, width=320, height=240, state="ready")
    slot = BatchClip(
        batch_id=db.get_one(BatchClip, assignment.batch_clip_id).batch_id, clip_id=other.id
    )
    db.add(slot)
    db.flush()
    db.add(Assignment(batch_clip_id=slot.id, clip_id=other.id, annotator_id=user.id))
    db.flush()
    login(client, db, user)
    page = client.get(f"/annotate/{assignment.id}")
    assert f'data-next-clip="{other.id}" data-next-count="9"' in page.text
    assert f'data-next-clip="{clip.id}"' not in page.text


def test_emotion_quality_and_speech_panels_save_and_show_conflicts(
    client: TestClient, db: Session
) -> None:
    clip, user, assignment = _assigned(db)
    clip.duration_s = 1.0
    _, annotation = service.open_assignment(db, user, assignment.id)
    character = service.annotation_payload(db, annotation)["characters"][0]
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
