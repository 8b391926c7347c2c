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


def test_the_form_keeps_the_options_and_shows_a_refused_one_in_place(
    client: TestClient, db: Session
) -> None:
    project = create_project(db)
    approved_annotation(db, media_clip(db, project, b"options clip"))
    csrf = login(client, db, create_user(db, Role.admin))
    page = client.get("/exports")
    assert 'name="frames"' in page.text and 'name="licence"' in page.text
    form = {"csrf_token": csrf, "name": "v2", "project_id": project.id, "formats": ["yolo"],
            "val_percent": "80", "licence": "CC BY 4.0", "source": "reels"}  # fmt: skip
    refused = client.post("/exports", data=form)
    assert refused.status_code == 422
    assert 'data-error-for="val_percent"' in refused.text
    assert 'value="CC BY 4.0"' in refused.text and 'value="80"' in refused.text
    frames = refused.text.split('name="frames"', 1)[1].split(">", 1)[0]
    assert "checked" not in frames  # an unticked box stays unticked
    assert "checked" in page.text.split('name="frames"', 1)[1].split(">", 1)[0]  # default on
    created = client.post("/exports", data={**form, "val_percent": "20", "frames": "true"})
    assert created.status_code == 303, created.text
    snap = db.get_one(ExportSnapshot, int(created.headers["location"].rsplit("/", 1)[1]))
    assert snap.options["frames"] is True and snap.options["val_percent"] == 20
    assert (snap.options["licence"], snap.options["source"]) == ("CC BY 4.0", "reels")
    detail = client.get(f"/exports/{snap.id}").text
    assert "val 20.0 %" in detail and "CC BY 4.0" in detail and "quality 88" in detail
    api = client.post("/api/exports", headers={"X-CSRF-Token": csrf},
                      json={"project_id": project.id, "name": "v3", "formats": ["yolo"],
                            "options": {"frames": False, "test_percent": 60}})  # fmt: skip
    assert api.status_code == 422 and "test_percent" in api.text
