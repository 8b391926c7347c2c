"""Project pages and API as an admin uses them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.projects.models import Project, SkeletonTemplate
from tests.factories import create_project, create_user, login


def test_admin_creates_a_project_and_edits_its_settings(client: TestClient, db: Session) -> None:
    csrf = login(client, db, create_user(db, Role.admin))
    created = client.post(
        "/projects",
        data={"name": "toons", "subsets": ["pose", "i2v"], "csrf_token": csrf},
    )
    assert created.status_code == 303
    project = db.scalar(select(Project).where(Project.name == "toons"))
    assert project is not None and created.headers["location"] == f"/projects/{project.id}"
    assert project.subsets == ["pose", "i2v"]
    page = client.get(f"/projects/{project.id}")
    assert page.status_code == 200 and "time_of_day: day, dusk, night" in page.text
    saved = client.post(
        f"/projects/{project.id}",
        data={
            "subsets": ["pose", "i2v"],
            "tag_vocabulary": "venue: indoor, outdoor",
            "emotion_labels": "joy, neutral",
            "rejection_reasons": "caption: wording, other",
            "required_levels": "pose: keypoints\ni2v: tags",
            "caption_guide": "Name every character.",
            "agreement_threshold": "0.7",
            "csrf_token": csrf,
        },
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200 and "Settings saved." in saved.text
    assert "<html" not in saved.text
    db.refresh(project)
    assert project.tag_vocabulary == {"venue": ["indoor", "outdoor"]}
    assert project.required_levels == {"pose": ["keypoints"], "i2v": ["tags"]}
    assert project.caption_guide == "Name every character." and project.agreement_threshold == 0.7
    refused = client.post(
        f"/projects/{project.id}",
        data={"subsets": ["pose"], "tag_vocabulary": "", "emotion_labels": "joy",
              "rejection_reasons": "caption: wording, other", "required_levels": "pose: flying",
              "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert refused.status_code == 422 and "Unknown levels" in refused.text
    cleared = client.post(
        f"/projects/{project.id}",
        data={"subsets": ["pose"], "emotion_labels": "",
              "rejection_reasons": "caption: wording, other", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert cleared.status_code == 422 and "at least one emotion label" in cleared.text


def test_custom_skeleton_editor_saves_and_deletes(client: TestClient, db: Session) -> None:
    project = create_project(db)
    csrf = login(client, db, create_user(db, Role.admin))
    saved = client.post(
        f"/projects/{project.id}/skeletons",
        data={"name": "fish", "points": "snout 0.03\nfin_l\nfin_r\ntail 0.1",
              "edges": "snout-tail", "symmetric": "fin_l-fin_r", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert saved.status_code == 200 and 'data-skeleton="fish"' in saved.text
    template = db.scalar(select(SkeletonTemplate).where(SkeletonTemplate.project_id == project.id))
    assert template is not None
    assert template.definition["symmetric_pairs"] == [[1, 2]]
    editor = client.get(f"/projects/{project.id}?edit={template.id}")
    assert "fin_l-fin_r" in editor.text and "tail 0.1" in editor.text
    bad = client.post(
        f"/projects/{project.id}/skeletons",
        data={"name": "fish", "points": "a\nb", "edges": "a-z", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422 and "unknown keypoint" in bad.text
    gone = client.post(
        f"/projects/{project.id}/skeletons/{template.id}/delete", data={"csrf_token": csrf}
    )
    assert gone.status_code == 200 and 'data-skeleton="fish"' not in gone.text


def test_projects_api(client: TestClient, db: Session) -> None:
    admin = create_user(db, Role.admin)
    _, token = auth_service.create_api_token(db, admin, "script")
    auth = {"Authorization": f"Bearer {token}"}
    made = client.post("/api/projects", json={"name": "api-proj", "subsets": ["face_audio"]},
                       headers=auth)  # fmt: skip
    assert made.status_code == 201 and made.json()["subsets"] == ["face_audio"]
    pid = made.json()["id"]
    patched = client.patch(f"/api/projects/{pid}", json={"caption_guide": "Short."}, headers=auth)
    assert patched.json()["caption_guide"] == "Short."
    bad = client.patch(f"/api/projects/{pid}", json={"agreement_threshold": 3}, headers=auth)
    assert bad.status_code == 422
    skel = client.post(
        f"/api/projects/{pid}/skeletons",
        json={"name": "stick", "keypoints": ["a", "b"], "edges": [["a", "b"]]},
        headers=auth,
    )
    assert skel.status_code == 201 and skel.json()["definition"]["edges"] == [[0, 1]]
    listed = client.get(f"/api/projects/{pid}/skeletons", headers=auth).json()
    assert [s["name"] for s in listed] == ["stick"]
    deleted = client.delete(f"/api/projects/{pid}/skeletons/{listed[0]['id']}", headers=auth)
    assert deleted.status_code == 204
    assert client.get("/api/projects/999999", headers=auth).status_code == 404
    annotator = create_user(db, Role.annotator)
    _, ann_token = auth_service.create_api_token(db, annotator, "script")
    denied = client.get("/api/projects", headers={"Authorization": f"Bearer {ann_token}"})
    assert denied.status_code == 403


def test_keypoint_labelling_settings_from_the_form_and_the_api(
    client: TestClient, db: Session
) -> None:
    admin = create_user(db, Role.admin)
    project = create_project(db)
    assert project.keypoint_confidence_floor == 0.3 and not project.approved_model_points_count
    csrf = login(client, db, admin)
    page = client.get(f"/projects/{project.id}")
    assert 'name="keypoint_confidence_floor"' in page.text
    saved = client.post(
        f"/projects/{project.id}",
        data={"subsets": ["pose"], "emotion_labels": "joy", "tag_vocabulary": "venue: indoor",
              "rejection_reasons": "caption: wording", "required_levels": "pose: keypoints",
              "keypoint_confidence_floor": "0.45", "approved_model_points_count": "true",
              "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert saved.status_code == 200 and "Settings saved." in saved.text
    db.refresh(project)
    assert project.keypoint_confidence_floor == 0.45 and project.approved_model_points_count
    _, token = auth_service.create_api_token(db, admin, "script")
    auth = {"Authorization": f"Bearer {token}"}
    patched = client.patch(f"/api/projects/{project.id}", headers=auth,
                           json={"approved_model_points_count": False})  # fmt: skip
    assert patched.json()["approved_model_points_count"] is False
    assert patched.json()["keypoint_confidence_floor"] == 0.45
    bad = client.patch(f"/api/projects/{project.id}", json={"keypoint_confidence_floor": 1.5},
                       headers=auth)  # fmt: skip
    assert bad.status_code == 422
