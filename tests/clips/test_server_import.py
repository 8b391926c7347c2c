"""Server-folder import reads only under IMPORT_ROOT: links inside the folder that point out
of it are not followed, odd paths are refused with a clear answer, and without a root set
the web imports no server folder at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.core.config import get_settings
from tests.factories import create_project, create_user, login


@pytest.fixture
def import_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "imports"
    root.mkdir()
    settings = get_settings()
    saved = settings.import_root
    settings.import_root = root
    try:
        yield root
    finally:
        settings.import_root = saved


def _import(client: TestClient, db: Session, path: str) -> object:
    csrf = login(client, db, create_user(db, Role.admin))
    project = create_project(db)
    return client.post(
        f"/api/projects/{project.id}/clips/import-folder",
        json={"path": path},
        headers={"X-CSRF-Token": csrf},
    )


def test_a_link_inside_the_folder_to_a_file_outside_is_not_imported(
    client: TestClient, db: Session, import_root: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours" * 100)
    folder = import_root / "batch1"
    folder.mkdir()
    (folder / "inside.mp4").write_bytes(b"\0" * 2000)
    (folder / "escape.mp4").symlink_to(secret)
    (import_root / "linked-folder").symlink_to(tmp_path)
    response = _import(client, db, "batch1")
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    names = [row["name"] for row in response.json()]  # type: ignore[attr-defined]
    assert names == ["inside.mp4"]
    # A link to a folder outside the root is outside the root.
    assert _import(client, db, "linked-folder").status_code == 403  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("../", 403, "must come from under"),
        ("/etc", 403, "must come from under"),
        ("bad\0name", 422, "NUL"),
        ("missing", 404, "Nothing at missing"),
    ],
)
def test_odd_paths_get_a_clear_refusal(
    client: TestClient, db: Session, import_root: Path, path: str, status: int, words: str
) -> None:
    response = _import(client, db, path)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert words in response.json()["message"]  # type: ignore[attr-defined]


def test_without_an_import_root_the_web_imports_no_server_folder(
    client: TestClient, db: Session
) -> None:
    assert get_settings().import_root is None
    response = _import(client, db, ".")
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert "IMPORT_ROOT" in response.json()["message"]  # type: ignore[attr-defined]
