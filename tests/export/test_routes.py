"""Export pages and API: admins create, watch and download; nobody else gets in."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.export import build
from app.export.models import ExportSnapshot
from tests.export.builders import approved_annotation, media_clip, queued_snapshot
from tests.factories import create_project, create_user, login


def test_admin_creates_watches_and_downloads_a_snapshot(client: TestClient, db: Session) -> None:
    project = create_project(db)
    annotation = approved_annotation(db, media_clip(db, project, b"route clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    page = client.get("/exports")
    assert page.status_code == 200 and 'value="coco_wholebody"' in page.text
    created = client.post(
        "/exports",
        data={"csrf_token": csrf, "name": "v1", "project_id": project.id,
              "formats": ["coco_wholebody", "captions"], "subset": "pose"},
    )  # fmt: skip
    assert created.status_code == 303, created.text
    export_id = int(created.headers["location"].rsplit("/", 1)[1])
    detail = client.get(f"/exports/{export_id}")
    assert detail.status_code == 200 and "coco_wholebody" in detail.text
    queued = client.get(f"/exports/{export_id}/progress", headers={"HX-Request": "true"})
    assert 'data-testid="export-state">queued' in queued.text and "every 1s" in queued.text
    assert client.get(f"/exports/{export_id}/download").status_code == 409

    snap = db.get_one(ExportSnapshot, export_id)
    build.build_now(db, snap)
    done = client.get(f"/exports/{export_id}/progress", headers={"HX-Request": "true"})
    assert "every 1s" not in done.text and snap.sha256 in done.text
    body = client.get(f"/exports/{export_id}/download")
    assert body.status_code == 200 and body.headers["content-type"] == "application/zip"
    assert hashlib.sha256(body.content).hexdigest() == snap.sha256
    assert client.get(f"/api/exports/{export_id}/download").content == body.content
    lines = zipfile.ZipFile(io.BytesIO(body.content)).read("captions.jsonl").splitlines()
    assert [json.loads(line)["clip_id"] for line in lines] == [annotation.clip_id]

    listed = client.get("/api/exports", params={"project_id": project.id}).json()
    assert [(e["name"], e["state"], e["clips"]) for e in listed] == [("v1", "done", 1)]


def test_api_validates_formats_and_names(client: TestClient, db: Session) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"api clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    headers = {"X-CSRF-Token": csrf}
    bad = client.post("/api/exports", headers=headers,
                      json={"project_id": project.id, "name": "x", "formats": ["pdf"]})  # fmt: skip
    assert bad.status_code == 422 and "Unknown formats: pdf" in bad.text
    body = {"project_id": project.id, "name": "x", "formats": ["yolo"]}
    first = client.post("/api/exports", headers=headers, json=body)
    assert first.status_code == 201 and first.json()["state"] == "queued"
    assert client.post("/api/exports", headers=headers, json=body).status_code == 409


def test_other_roles_cannot_download(client: TestClient, db: Session) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"secret clip"))
    snap = queued_snapshot(db, project.id, "s", ["captions"])
    build.build_now(db, snap)
    login(client, db, create_user(db, Role.reviewer))
    assert client.get(f"/exports/{snap.id}/download").status_code == 403
    assert client.get(f"/api/exports/{snap.id}").status_code == 403
