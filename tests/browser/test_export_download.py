"""In Chromium: an admin clicks "Download zip" on a built snapshot and gets the archive under
its name with the recorded bytes, streamed by the web from the local folder, or fetched from
the bucket through the presigned URL the web redirects to."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.export import build
from app.export.models import ExportSnapshot
from tests.browser.conftest import sign_in
from tests.export.builders import approved_annotation, media_clip, queued_snapshot
from tests.factories import PASSWORD, create_project, create_user

pytestmark = pytest.mark.browser

STORES = [
    pytest.param(False, id="local"),
    # PostgreSQL stands for the several-host deployment a bucket serves; the embedded stack
    # is the demo, which keeps its media on the local disk.
    pytest.param(True, id="bucket", marks=pytest.mark.postgres_only),
]


@pytest.mark.parametrize("in_bucket", STORES)
def test_the_download_link_gives_the_snapshot_under_its_name(
    in_bucket: bool,
    request: pytest.FixtureRequest,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    live_server: str,
    page: Page,
    unique: str,
    tmp_path: Path,
) -> None:
    if in_bucket:
        request.getfixturevalue("use_object_store")
    with committed() as s:
        project = create_project(s, name=f"dl-{unique}")
        admin = create_user(s, Role.admin, username=f"admin-{unique}")
        approved_annotation(s, media_clip(s, project, f"download {unique}".encode()))
        snapshot_id = queued_snapshot(s, project.id, "v1", ["captions", "cellabel"]).id
        cleanup["projects"].append(project.id)
        cleanup["users"].append(admin.id)
    assert build.run_build(snapshot_id) == "done"
    with committed() as s:
        sha256 = s.get_one(ExportSnapshot, snapshot_id).sha256

    sign_in(page, live_server, admin.username, PASSWORD)
    page.goto(f"{live_server}/exports")  # the form, with its bucket field in a bucket
    assert page.locator("input[name=target]").count() == (1 if in_bucket else 0)
    page.goto(f"{live_server}/exports/{snapshot_id}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download zip").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"dl-{unique}-v1.zip"
    assert download.url.startswith("http://127.0.0.1") and (
        (download.url.split("/", 3)[2] != live_server.split("/", 3)[2]) == in_bucket
    )  # from the store itself when in a bucket
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha256
