"""Request ids in responses and logs, and Prometheus metrics for admins only."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.core.config import get_settings
from app.core.observability import configure_logging
from tests.factories import create_clip, create_user


def test_every_response_carries_a_request_id_and_keeps_the_callers(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 16
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc123"}).headers["x-request-id"]
        == "abc123"
    )


def test_every_response_says_how_long_the_server_took(client: TestClient) -> None:
    """``Server-Timing`` lets browsers' network panels and load tools separate server time
    from the network; error pages carry it too, next to the security headers."""
    for path, status in (("/healthz", 200), ("/no-such-page", 404)):
        response = client.get(path)
        assert response.status_code == status
        name, duration = response.headers["server-timing"].split(";dur=")
        assert name == "app" and 0 < float(duration) < 10_000
        assert response.headers["x-frame-options"] == "DENY"


def test_log_lines_are_json_with_the_request_id_when_asked(
    client: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "log_format", "json")
    configure_logging()
    try:
        client.get("/healthz", headers={"X-Request-ID": "trace-me"})
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
    finally:
        logging.getLogger().handlers[:] = []
    request_lines = [line for line in lines if line.get("message") == "request"]
    assert request_lines and request_lines[-1]["request_id"] == "trace-me"
    assert request_lines[-1]["route"] == "/healthz" and request_lines[-1]["status"] == 200


def test_log_lines_are_readable_by_default(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert get_settings().log_format == "text"
    configure_logging()
    try:
        client.get("/healthz", headers={"X-Request-ID": "trace-me"})
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers[:] = []
    assert re.search(
        r"^\d\d:\d\d:\d\d INFO  cellabel\.http  GET /healthz 200 [\d.]+ ms  request_id=trace-me$",
        err,
        re.M,
    ), err


def test_metrics_need_an_admin_and_report_latency_and_jobs(client: TestClient, db: Session) -> None:
    from app.core.db import session_scope
    from app.pipeline.models import Job
    from app.projects.models import Project

    with session_scope() as committed:  # metrics read what other processes can see
        clip = create_clip(committed)
        committed.add(Job(clip_id=clip.id, step="probe"))
        project_id = clip.project_id
    admin = create_user(db, Role.admin)
    _, token = auth_service.create_api_token(db, admin, "prometheus", ["read"])
    annotator = create_user(db, Role.annotator)
    _, other = auth_service.create_api_token(db, annotator, "nosy", ["read"])
    assert client.get("/metrics", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    client.get("/healthz")
    body = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    assert 'cellabel_request_seconds_count{method="GET",route="/healthz",status="200"}' in body
    assert 'cellabel_jobs{state="queued",step="probe"}' in body
    assert "cellabel_queue_depth" in body
    with session_scope() as committed:
        committed.delete(committed.get_one(Project, project_id))
