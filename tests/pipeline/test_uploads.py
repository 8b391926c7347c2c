"""Uploads straight to the bucket through the API, against a real SeaweedFS: refusals (too
large, not a video, someone else's upload, completing with parts missing) and a whole upload
sent part by part to presigned URLs becoming a clip, its object holding exactly the bytes."""

from __future__ import annotations

import hashlib
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth.models import Role
from app.cli import cli
from app.clips.models import PENDING_HASH_PREFIX, Clip
from app.core.config import get_settings
from app.core.db import utcnow
from app.pipeline import intake
from app.pipeline.models import Upload, UploadState
from app.pipeline.registry import StepFailed
from app.pipeline.steps import settle_hash
from app.pipeline.uploads import PART_SIZE, abort_stale_uploads
from tests.factories import create_project, create_user, login
from tests.object_store import BUCKET, SeaweedServer

pytestmark = pytest.mark.postgres_only


def _admin(client: TestClient, db: Session) -> dict[str, str]:
    return {"X-CSRF-Token": login(client, db, create_user(db, Role.admin))}


def _put(url: str, data: bytes) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT")) as answer:
        assert answer.status == 200


def _start(client: TestClient, headers: dict[str, str], project_id: int, **body: Any) -> Any:
    return client.post(f"/api/projects/{project_id}/uploads", json=body, headers=headers)


def _object_bytes(store: SeaweedServer, key: str) -> bytes:
    prefix = get_settings().storage_url.split("/", 3)[3]
    body = store.client().get_object(Bucket=BUCKET, Key=f"{prefix}/{key}")["Body"]
    return bytes(body.read())


def test_refusals_are_clear_and_nothing_is_started(
    client: TestClient, db: Session, use_object_store: SeaweedServer, monkeypatch: Any
) -> None:
    project = create_project(db)
    headers = _admin(client, db)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(10 * 1024**2))
    get_settings.cache_clear()

    big = _start(client, headers, project.id, filename="long.mp4", size=10 * 1024**2 + 1)
    assert big.status_code == 413
    assert big.json()["message"] == (
        "long.mp4 is 10,485,761 bytes, larger than the limit of 10,485,760 bytes."
    )
    text = _start(client, headers, project.id, filename="notes.txt", size=100)
    assert text.status_code == 422
    assert text.json()["message"].startswith("Not a video file type. Accepted: ")
    unknown = _start(client, headers, project.id, filename="a.mp4", size=1, subsets=["nope"])
    assert unknown.status_code == 422
    assert "Unknown subsets: nope" in unknown.json()["message"]
    assert db.query(Upload).filter_by(project_id=project.id).count() == 0


def test_an_upload_is_only_the_starting_admins(
    client: TestClient, db: Session, use_object_store: SeaweedServer
) -> None:
    project = create_project(db)
    started = _start(client, _admin(client, db), project.id, filename="a.mp4", size=5)
    assert started.status_code == 201
    upload_id = started.json()["id"]

    other = _admin(client, db)  # another admin, signed in on the same client
    assert client.get(f"/api/uploads/{upload_id}").status_code == 404
    parts = client.post(f"/api/uploads/{upload_id}/parts", json={"parts": [1]}, headers=other)
    assert parts.status_code == 404
    assert client.post(f"/api/uploads/{upload_id}/complete", headers=other).status_code == 404
    assert client.delete(f"/api/uploads/{upload_id}", headers=other).status_code == 404


def test_completing_with_parts_missing_says_which(
    client: TestClient, db: Session, use_object_store: SeaweedServer
) -> None:
    project = create_project(db)
    headers = _admin(client, db)
    size = 2 * PART_SIZE + 10
    upload = _start(client, headers, project.id, filename="clip.mp4", size=size).json()
    assert (upload["part_count"], upload["parts_done"]) == (3, [])
    urls = client.post(f"/api/uploads/{upload['id']}/parts", json={"parts": [2]}, headers=headers)
    _put(urls.json()["urls"]["2"], b"x" * PART_SIZE)

    # The status lists what a resumed browser skips.
    assert client.get(f"/api/uploads/{upload['id']}").json()["parts_done"] == [2]
    done = client.post(f"/api/uploads/{upload['id']}/complete", headers=headers)
    assert done.status_code == 422
    assert done.json()["message"] == (
        "clip.mp4 is not all in the store yet: 2 of 3 parts missing (1, 3). "
        "Send them, then complete again."
    )
    wrong = client.post(f"/api/uploads/{upload['id']}/parts", json={"parts": [4]}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["message"] == f"Upload {upload['id']} has parts 1 to 3, not 4."


def test_a_whole_upload_becomes_a_clip_with_exactly_its_bytes(
    client: TestClient, db: Session, use_object_store: SeaweedServer
) -> None:
    project = create_project(db)
    headers = _admin(client, db)
    data = bytes(range(256)) * (PART_SIZE // 256) + b"tail"
    upload = _start(client, headers, project.id, filename="whole.mp4", size=len(data)).json()
    urls = client.post(
        f"/api/uploads/{upload['id']}/parts", json={"parts": [2, 1]}, headers=headers
    )
    for number, url in urls.json()["urls"].items():
        start = (int(number) - 1) * PART_SIZE
        _put(url, data[start : start + PART_SIZE])

    done = client.post(f"/api/uploads/{upload['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    clip = db.get_one(Clip, done.json()["clip_id"])
    assert clip.storage_key == f"clips/{project.id}/{clip.id}/source.mp4"
    assert clip.content_hash == f"{PENDING_HASH_PREFIX}{upload['id']}"
    stored = _object_bytes(use_object_store, clip.storage_key)
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    # Completing again (a browser that lost the answer) is the same clip; no new upload starts.
    again = client.post(f"/api/uploads/{upload['id']}/complete", headers=headers)
    assert again.json()["clip_id"] == clip.id
    assert db.get_one(Upload, upload["id"]).state == UploadState.completed
    parts = client.post(f"/api/uploads/{upload['id']}/parts", json={"parts": [1]}, headers=headers)
    assert parts.status_code == 409


def test_the_probe_step_fails_an_uploaded_duplicate(db: Session, tmp_path: Path) -> None:
    project = create_project(db)
    first = intake.import_stream(db, project, (tmp_path / "a").open("w+b"), "a.mp4")
    video = tmp_path / "same.mp4"
    video.write_bytes(b"")
    uploaded = Clip(
        project_id=project.id,
        filename="same.mp4",
        storage_key="x",
        content_hash=f"{PENDING_HASH_PREFIX}1",
    )
    db.add(uploaded)
    db.flush()
    with pytest.raises(StepFailed, match=f"Same content as clip {first.clip_id}."):
        settle_hash(db, uploaded, video)

    video.write_bytes(b"other bytes")
    settle_hash(db, uploaded, video)
    assert uploaded.content_hash == hashlib.sha256(b"other bytes").hexdigest()


def test_abandoned_uploads_are_aborted_and_a_stopped_store_is_a_clear_503(
    client: TestClient, db: Session, use_object_store: SeaweedServer
) -> None:
    project = create_project(db)
    headers = _admin(client, db)
    old = _start(client, headers, project.id, filename="old.mp4", size=10).json()
    fresh = _start(client, headers, project.id, filename="fresh.mp4", size=10).json()
    db.get_one(Upload, old["id"]).created_at = utcnow() - timedelta(hours=25)
    db.flush()

    assert abort_stale_uploads(db, older_than=timedelta(hours=24)) == [old["id"]]
    assert db.get_one(Upload, old["id"]).state == UploadState.aborted
    assert db.get_one(Upload, fresh["id"]).state == UploadState.open
    gone = client.post(f"/api/uploads/{old['id']}/parts", json={"parts": [1]}, headers=headers)
    assert gone.status_code == 409
    assert gone.json()["message"] == f"Upload {old['id']} is aborted; start a new one."

    use_object_store.stop()
    try:
        down = client.get(f"/api/uploads/{fresh['id']}")
        assert down.status_code == 503
        assert "did not answer" in down.json()["message"]
    finally:
        use_object_store.start()
    assert client.get(f"/api/uploads/{fresh['id']}").json()["parts_done"] == []


def test_the_cli_lets_a_web_address_upload_to_the_bucket(
    use_object_store: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bucket of its own: once a bucket has CORS rules, SeaweedFS allows no other origin.
    bucket = use_object_store.make_bucket("cors-rules")
    monkeypatch.setenv("STORAGE_URL", f"s3://{bucket}/media")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["clips", "allow-uploads-from", "https://label.example.com"])
    assert result.exit_code == 0, result.output
    assert "Browser uploads allowed from https://label.example.com." in result.output
    rules = use_object_store.client().get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [(r["AllowedOrigins"], r["ExposeHeaders"]) for r in rules] == [
        (["https://label.example.com"], ["ETag"])
    ]
