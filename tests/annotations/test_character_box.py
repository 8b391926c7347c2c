"""The person-drawn character box of a keypoint frame: saved with the frame's points through
the versioned frame save, validated, carried by conflicts, undo, held runs and copy-previous."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotations.models import KeypointFrame
from app.annotations.opening import open_assignment
from app.annotations.revisions import revisions_of
from tests.factories import create_assignment, login

BOX = [40.0, 30.5, 120.0, 150.25]


def _track(client: TestClient, db: Session) -> tuple[dict[str, Any], dict[str, str]]:
    """An annotator's opened copy of a 4-frame 320x240 clip whose frames 1-2 are one held
    drawing: its track (as the workspace reads it) and the headers a save sends."""
    _, user, assignment = create_assignment(db, held_runs=[[1, 3]])
    annotation = open_assignment(db, user, assignment.id)[1]
    headers = {"X-CSRF-Token": login(client, db, user)}
    payload = client.get(f"/api/annotations/{annotation.id}").json()
    return payload["characters"][0]["tracks"][0], headers


def _save(
    client: TestClient, headers: dict[str, str], track: dict[str, Any], n: int, **body: Any
) -> Any:
    frame = track["frames"][n]
    sent = {"points": [p[:3] for p in frame["points"]], "version": frame["version"], **body}
    return client.put(f"/api/tracks/{track['id']}/frames/{n}", json=sent, headers=headers)


def test_a_box_is_saved_read_back_kept_when_left_out_and_cleared_by_null(
    client: TestClient, db: Session
) -> None:
    track, headers = _track(client, db)
    saved = _save(client, headers, track, 0, box=BOX)
    assert saved.status_code == 200 and saved.json()[0]["box"] == BOX
    row = db.get(KeypointFrame, track["frames"][0]["id"])
    assert row is not None and row.box == BOX
    [revision] = revisions_of(db, "keypoint_frame", row.id)
    assert revision.before == {"box": None} and revision.after == {"box": BOX}
    track["frames"][0] = saved.json()[0]
    kept = _save(client, headers, track, 0, keyframe=True)
    assert kept.status_code == 200 and kept.json()[0]["box"] == BOX
    track["frames"][0] = kept.json()[0]
    cleared = _save(client, headers, track, 0, box=None)
    assert cleared.status_code == 200 and cleared.json()[0]["box"] is None


def test_a_bad_box_is_a_clear_422(client: TestClient, db: Session) -> None:
    track, headers = _track(client, db)
    for box, says in (
        ([300.0, 10.0, 40.0, 20.0], "inside the 320x240 frame"),
        ([-5.0, 10.0, 40.0, 20.0], "inside the 320x240 frame"),
        ([10.0, 10.0, 0.0, 20.0], "width and a height above 0"),
        ([10.0, 10.0, 20.0, -1.0], "width and a height above 0"),
    ):
        refused = _save(client, headers, track, 0, box=box)
        assert refused.status_code == 422 and says in refused.text, refused.text
    assert _save(client, headers, track, 0, box=[1.0, 2.0, 3.0]).status_code == 422
    row = db.get(KeypointFrame, track["frames"][0]["id"])
    assert row is not None and row.box is None


def test_a_stale_save_is_a_409_carrying_the_current_box(client: TestClient, db: Session) -> None:
    track, headers = _track(client, db)
    assert _save(client, headers, track, 0, box=BOX).status_code == 200
    stale = _save(client, headers, track, 0, box=[1.0, 1.0, 10.0, 10.0])
    assert stale.status_code == 409
    assert stale.json()["detail"]["current"]["box"] == BOX


def test_a_box_on_a_held_frame_follows_its_held_run(client: TestClient, db: Session) -> None:
    track, headers = _track(client, db)
    saved = _save(client, headers, track, 1, box=BOX, apply_to_held_run=True)
    assert saved.status_code == 200
    assert {f["frame"]: f["box"] for f in saved.json()} == {1: BOX, 2: BOX}


def test_undo_and_redo_put_the_box_back(client: TestClient, db: Session) -> None:
    track, headers = _track(client, db)
    frame = track["frames"][0]
    before = {"points": frame["points"], "human": frame["human"], "keyframe": False, "box": None}
    [saved] = _save(client, headers, track, 0, box=BOX).json()
    url = f"/api/tracks/{track['id']}/frames/restore"
    undo = {"action": "undo", "frames": [{"frame": 0, "version": saved["version"], **before}]}
    undone = client.post(url, headers=headers, json=undo)
    assert undone.status_code == 200 and undone.json()[0]["box"] is None
    after = {**before, "box": BOX, "version": undone.json()[0]["version"], "frame": 0}
    redone = client.post(url, headers=headers, json={"action": "redo", "frames": [after]})
    assert redone.status_code == 200 and redone.json()[0]["box"] == BOX
    bad = {**after, "version": redone.json()[0]["version"], "box": [0.0, 0.0, 999.0, 10.0]}
    refused = client.post(url, headers=headers, json={"action": "redo", "frames": [bad]})
    assert refused.status_code == 422


def test_copy_previous_carries_the_box_and_reports_it_for_undo(
    client: TestClient, db: Session
) -> None:
    track, headers = _track(client, db)
    assert _save(client, headers, track, 0, box=BOX).status_code == 200
    copied = client.post(f"/api/tracks/{track['id']}/copy-previous", headers=headers,
                         json={"frame": 1, "version": track["frames"][1]["version"]})  # fmt: skip
    assert copied.status_code == 200
    changes = {c["frame"]: c for c in copied.json()}
    assert set(changes) == {1, 2}
    assert all(c["box"] == BOX and c["before"]["box"] is None for c in changes.values())
