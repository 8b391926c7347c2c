"""A bug's 500 still reaches the user through the app: its error page (or JSON for the API)
with an error id to quote, the request id header and the security headers."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.auth.deps import Public
from app.core.security import SECURITY_HEADERS


def _boom(principal: Public) -> None:
    raise RuntimeError("a bug")


def test_an_unexpected_error_answers_with_headers_and_an_error_id(app: Any) -> None:
    app.add_api_route("/boom", _boom)
    app.add_api_route("/api/boom", _boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/boom", headers={"X-Request-ID": "req-1234"})
        api = client.get("/api/boom")
    assert page.status_code == api.status_code == 500
    for response in (page, api):
        assert response.headers["X-Request-ID"]
        for name in SECURITY_HEADERS:
            assert name in response.headers, name
    assert page.headers["content-type"].startswith("text/html")
    assert "req-1234" in page.text and "a bug" not in page.text
    assert api.json()["error"] == "server_error"
    assert api.headers["X-Request-ID"] in api.json()["message"]
