"""Exports with media in an object store (a real SeaweedFS): the archive is written to the
bucket, downloads go to it through presigned URLs, and a copy goes to the prefix an admin
names; without a store the embedded default is unchanged."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.core.s3_storage import S3Storage
from app.core.storage import get_storage
from app.export import build
from app.export.models import ExportSnapshot
from app.projects.models import Project
from tests.export.builders import approved_annotation, embedded_cli_export, media_clip
from tests.factories import create_project, create_user, login
from tests.object_store import BUCKET, SeaweedServer


def fetch(url: str) -> tuple[bytes, str]:
    """GET ``url`` as a browser following the redirect would: (body, Content-Disposition)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read(), response.headers["Content-Disposition"]


def new_bucket(store: SeaweedServer) -> str:
    return store.make_bucket(f"team-{uuid.uuid4().hex[:10]}")


def create(
    client: TestClient, csrf: str, project: Project, name: str, target: str
) -> httpx.Response:
    form = {"csrf_token": csrf, "name": name, "project_id": project.id, "formats": ["captions"],
            "target": target}  # fmt: skip
    return client.post("/exports", data=form)


def test_an_export_is_written_to_and_downloaded_from_the_bucket_and_copied_to_the_target(
    use_object_store: SeaweedServer, client: TestClient, db: Session
) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"bucket clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    assert 'name="target"' in client.get("/exports").text
    team = new_bucket(use_object_store)
    created = create(client, csrf, project, "v1", f"s3://{team}/datasets/pose")
    assert created.status_code == 303, created.text
    export_id = int(created.headers["location"].rsplit("/", 1)[1])
    snap = db.get_one(ExportSnapshot, export_id)
    assert snap.target_url == f"s3://{team}/datasets/pose/"
    build.build_now(db, snap)

    s3, storage = use_object_store.client(), get_storage()
    assert isinstance(storage, S3Storage) and snap.storage_key
    stored = s3.get_object(Bucket=BUCKET, Key=storage.full_key(snap.storage_key))["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == snap.sha256

    name = f"{project.name}-v1.zip"
    for path in (f"/exports/{export_id}/download", f"/api/exports/{export_id}/download"):
        moved = client.get(path, follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["cache-control"] == "no-store"
        assert moved.headers["location"].startswith(use_object_store.endpoint)
        body, disposition = fetch(moved.headers["location"])
        assert hashlib.sha256(body).hexdigest() == snap.sha256 and name in disposition

    copy = s3.get_object(Bucket=team, Key=f"datasets/pose/{name}")["Body"].read()
    assert copy == stored
    manifest = json.loads(
        s3.get_object(Bucket=team, Key=f"datasets/pose/{project.name}-v1.json")["Body"].read()
    )
    assert (manifest["sha256"], manifest["size_bytes"]) == (snap.sha256, len(stored))
    assert (manifest["snapshot_id"], manifest["archive"], manifest["clips"]) == (snap.id, name, 1)
    done = client.get(f"/exports/{export_id}/progress", headers={"HX-Request": "true"}).text
    assert f"Copy written to <code>s3://{team}/datasets/pose/{name}</code>" in done
    assert client.get(f"/api/exports/{export_id}").json()["target_object"].endswith(name)

    for role in (Role.reviewer, Role.annotator):
        login(client, db, create_user(db, role))
        assert client.get(f"/exports/{export_id}/download").status_code == 403
        assert client.get(f"/api/exports/{export_id}/download").status_code == 403


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("https://example.com/x", "Give a bucket address such as s3://my-bucket/exports/"),
        ("s3://no-such-bucket-cellabel/x/", "There is no bucket 'no-such-bucket-cellabel'"),
        ("{media}/exports/", "holds this instance's own media"),
    ],
)
def test_a_bad_target_is_refused_in_the_form_with_what_was_typed_kept(
    use_object_store: SeaweedServer, client: TestClient, db: Session, target: str, message: str
) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"refused clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    storage = get_storage()
    assert isinstance(storage, S3Storage)
    target = target.format(media=f"s3://{storage.bucket}/{storage.prefix}")
    refused = create(client, csrf, project, "v1", target)
    assert refused.status_code == 422
    page = refused.text
    assert 'data-error-for="target"' in page and escape(message) in page
    assert f'value="{target}"' in page and 'value="v1"' in page
    api = client.post("/api/exports", headers={"X-CSRF-Token": csrf},
                      json={"project_id": project.id, "name": "v1", "formats": ["captions"],
                            "target": target})  # fmt: skip
    assert api.status_code == 422 and message in api.json()["message"]
    assert db.query(ExportSnapshot).filter_by(project_id=project.id).count() == 0


def test_a_failed_copy_is_shown_and_the_snapshot_stays_downloadable(
    use_object_store: SeaweedServer, client: TestClient, db: Session
) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"lost target clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    team = new_bucket(use_object_store)
    created = create(client, csrf, project, "v1", f"s3://{team}/out/")
    export_id = int(created.headers["location"].rsplit("/", 1)[1])
    use_object_store.client().delete_bucket(Bucket=team)  # gone before the build
    snap = build.build_now(db, db.get_one(ExportSnapshot, export_id))
    assert snap.state == "done" and snap.target_object is None
    page = client.get(f"/exports/{export_id}").text
    assert f"The copy to s3://{team}/out/ failed" in page and 'role="alert"' in page
    moved = client.get(f"/exports/{export_id}/download", follow_redirects=False)
    assert hashlib.sha256(fetch(moved.headers["location"])[0]).hexdigest() == snap.sha256


def test_without_an_object_store_the_form_offers_no_target(client: TestClient, db: Session) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"local clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    assert 'name="target"' not in client.get("/exports").text
    api = client.post("/api/exports", headers={"X-CSRF-Token": csrf},
                      json={"project_id": project.id, "name": "v1", "formats": ["captions"],
                            "target": "s3://somewhere/x/"})  # fmt: skip
    assert api.status_code == 422 and "need media in an object store" in api.text


def test_the_cli_writes_the_copy_to_the_target_and_the_archive_to_out(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    team = new_bucket(object_store)
    out = tmp_path / "snapshot.zip"
    env = object_store.settings_env(f"cli-{uuid.uuid4().hex[:8]}")
    printed = embedded_cli_export(tmp_path, out, "--name", "v1", "--target", f"s3://{team}/cli",
                                  STORAGE_CACHE_DIR=str(tmp_path / "cache"), **env)  # fmt: skip
    assert f"Copy written to s3://{team}/cli/embedded-v1.zip" in printed
    copy = object_store.client().get_object(Bucket=team, Key="cli/embedded-v1.zip")
    assert copy["Body"].read() == out.read_bytes()
