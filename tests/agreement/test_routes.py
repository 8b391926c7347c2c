"""Dashboard, CSV export, adjudication pages and the JSON API, as browsers and scripts see them."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.agreement import recompute
from app.agreement.models import AgreementScore
from app.annotations.models import Annotation, AnnotationKind, NodeStatus
from app.auth.models import Role
from app.batches import claims
from app.clips.models import ClipState
from app.core.jobs import PENDING_KEY
from tests.factories import clip_media_dir, create_project, create_user, login


@pytest.fixture
def scored(db: Session, scenario: dict[str, Any]) -> dict[str, Any]:
    """The shared two-annotator clip, scored and rolled up (no task is sent to the broker)."""
    db.info.pop(PENDING_KEY, None)
    recompute.recompute_clip(db, scenario["clip"].id)
    recompute.recompute_rollups(db, scenario["project"].id)
    db.info.pop(PENDING_KEY, None)
    return scenario


def test_dashboard_plots_and_lists_the_scored_clip(
    client: TestClient, db: Session, scored: dict[str, Any]
) -> None:
    login(client, db, create_user(db, Role.admin))
    project, clip = scored["project"], scored["clip"]
    page = client.get(f"/agreement?project_id={project.id}")
    assert page.status_code == 200
    html = page.text
    for chart in ('id="histograms"', 'id="annotator-bars"', 'id="trend"', 'id="heat-strip"'):
        assert chart in html
    assert scored["alice"].username in html and scored["bob"].username in html
    assert f'data-clip="{clip.id}"' in html
    # 133 joints in the heat strip, one rect each
    strip = html.split('id="heat-strip"')[1].split("</svg>")[0]
    assert strip.count("<rect") == 133
    # sorting links flip direction on the current column
    assert 'data-sort="keypoints.oks"' in html
    resorted = client.get(f"/agreement?project_id={project.id}&sort=keypoints.oks&desc=true")
    assert "OKS ▼" in resorted.text


def test_dashboard_is_for_admins_only(client: TestClient, db: Session) -> None:
    login(client, db, create_user(db, Role.reviewer))
    assert client.get("/agreement").status_code == 403
    assert client.get("/agreement/adjudication").status_code == 200


def test_csv_export_has_every_stored_score(
    client: TestClient, db: Session, scored: dict[str, Any]
) -> None:
    login(client, db, create_user(db, Role.admin))
    project = scored["project"]
    response = client.get(f"/agreement/export.csv?project_id={project.id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    stored = db.scalar(
        select(func.count())
        .select_from(AgreementScore)
        .where(AgreementScore.project_id == project.id)
    )
    assert len(rows) == stored
    oks = [
        r for r in rows if (r["level"], r["metric"], r["against"]) == ("keypoints", "oks", "human")
    ]
    (row,) = oks
    assert {row["annotator_a"], row["annotator_b"]} == {
        scored["alice"].username,
        scored["bob"].username,
    }
    value = db.scalar(
        select(AgreementScore.value).where(
            AgreementScore.project_id == project.id,
            AgreementScore.metric == "oks",
            AgreementScore.against == "human",
        )
    )
    assert float(row["value"]) == pytest.approx(value, rel=1e-5)


def test_admin_switches_majority_vote(client: TestClient, db: Session) -> None:
    project = create_project(db)
    csrf = login(client, db, create_user(db, Role.admin))
    response = client.post(
        f"/agreement/projects/{project.id}/majority",
        data={"enabled": "true", "csrf_token": csrf},
    )
    assert response.status_code == 303
    db.refresh(project)
    assert project.majority_vote is True


def test_reviewer_adjudicates_through_the_form(
    client: TestClient, db: Session, scored: dict[str, Any]
) -> None:
    clip, a, b = scored["clip"], scored["a"], scored["b"]
    csrf = login(client, db, scored["reviewer"])
    queue = client.get("/agreement/adjudication")
    assert f'data-clip="{clip.id}"' in queue.text
    assert (
        "frames of this clip are not ready" in client.get(f"/agreement/adjudication/{clip.id}").text
    )
    index = clip_media_dir(clip) / "frames" / "index.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text("{}")  # the frame cache exists: the overlay shows the frame picture
    page = client.get(f"/agreement/adjudication/{clip.id}?frame=2")
    assert page.status_code == 200
    overlay = page.text.split('id="overlay"')[1].split("</svg>")[0]
    assert f"/media/clips/{clip.id}/frames/2.jpg" in overlay
    # both versions' points, each in its colour
    colours = set(re.findall(r'<g data-version="([AB])"', overlay))
    assert colours == {"A", "B"}
    assert "<del>" in page.text and "<ins>" in page.text  # the caption diff
    response = client.post(
        f"/agreement/adjudication/{clip.id}",
        data={"csrf_token": csrf, "shots": str(b.id), "tags": str(a.id), "character-0": "mean"},
    )
    assert response.status_code == 303
    result = db.scalars(
        select(Annotation).where(
            Annotation.clip_id == clip.id, Annotation.kind == AnnotationKind.adjudicated
        )
    ).one()
    assert result.status == NodeStatus.approved and result.is_primary
    assert result.tags["time_of_day"] == "day"
    assert f'data-clip="{clip.id}"' not in client.get("/agreement/adjudication").text
    # a second adjudication is refused
    again = client.post(f"/agreement/adjudication/{clip.id}", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_annotators_of_the_clip_cannot_adjudicate_it(
    client: TestClient, db: Session, scored: dict[str, Any]
) -> None:
    admin = scored["alice"]
    admin.role = Role.admin
    db.flush()
    csrf = login(client, db, admin)
    response = client.post(
        f"/api/agreement/adjudication/{scored['clip'].id}", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 403


def test_json_api(client: TestClient, db: Session, scored: dict[str, Any]) -> None:
    csrf = login(client, db, create_user(db, Role.admin))
    project, clip = scored["project"], scored["clip"]
    scores = client.get(f"/api/agreement/clips/{clip.id}").json()
    assert {(s["level"], s["metric"]) for s in scores} >= {
        ("keypoints", "oks"),
        ("clip", "adjudication_score"),
    }
    rollups = client.get(f"/api/agreement/rollups?project_id={project.id}").json()
    annotators = {r["scope_id"] for r in rollups if r["scope"] == "annotator"}
    assert annotators == {scored["alice"].id, scored["bob"].id}
    assert client.get(f"/api/agreement/gold?project_id={project.id}").json() == []
    queue = client.get(f"/api/agreement/adjudication?project_id={project.id}").json()
    assert [q["clip_id"] for q in queue] == [clip.id]
    assert (
        client.post("/api/agreement/clips/0/recompute", headers={"X-CSRF-Token": csrf}).status_code
        == 404
    )
    created = client.post(
        f"/api/agreement/adjudication/{clip.id}",
        json={"tags": "majority", "characters": {"0": scored["b"].id}},
        headers={"X-CSRF-Token": csrf},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "approved" and body["is_primary"] is True


def test_csv_export_of_a_project_with_a_non_ascii_name_downloads_under_that_name(
    client: TestClient, db: Session
) -> None:
    login(client, db, create_user(db, Role.admin))
    project = create_project(db, name="Ōkami «雪» dessins")
    response = client.get(f"/agreement/export.csv?project_id={project.id}")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    exact = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(exact) == f"agreement-{project.name}.csv"
    assert disposition.isascii()


def test_direction_controls_in_a_file_name_show_as_codes_on_every_page_naming_the_clip(
    client: TestClient, db: Session, scored: dict[str, Any]
) -> None:
    """A right-to-left override can make "evil\u202egpj.mp4" read as "evilmp4.jpg": every page
    that names a clip (clip list and page, viewer, review queue, my queue, agreement dashboard,
    adjudication) shows the control as a visible code instead."""
    clip, project = scored["clip"], scored["project"]
    clip.filename, clip.state = "evil\u202egpj.mp4", ClipState.ready
    carol = create_user(db, Role.annotator)
    claims.assign_clips(db, scored["batch"].id, carol, 1)
    db.flush()
    admin = create_user(db, Role.admin)
    pages = {
        admin: [
            f"/clips?project={project.id}",
            f"/clips/{clip.id}",
            f"/clips/{clip.id}/view",
            "/review",
            f"/agreement?project_id={project.id}",
            "/agreement/adjudication",
            f"/agreement/adjudication/{clip.id}",
        ],
        carol: ["/queue"],
    }
    for user, paths in pages.items():
        client.cookies.clear()
        login(client, db, user)
        for path in paths:
            page = client.get(path)
            assert page.status_code == 200, path
            assert "\u202e" not in page.text, path
            assert "evil&lt;U+202E&gt;gpj.mp4" in page.text, path
