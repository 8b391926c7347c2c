"""In Chromium: an admin registers a bucket prefix with a wrong secret, sees why with what
was typed still there (the secret emptied), corrects it, and watches the sync count the
clips; after new objects arrive, Sync now adds just those, and Process now queues the
pipeline for every clip the syncs created."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips.models import Clip
from tests.browser.conftest import PageChecks, sign_in
from tests.clips.test_bucket_sources import put_objects
from tests.conftest import Worker, wait_until_settled
from tests.factories import PASSWORD, create_project, create_user
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_register_a_bucket_with_a_mistake_then_sync_it(
    live_server: str, page: Page, page_checks: PageChecks, unique: str, celery_worker: Worker,
    object_store: SeaweedServer, committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:  # fmt: skip
    bucket = object_store.make_bucket(f"browser-{unique}")
    put_objects(object_store, bucket, [f"show/c{n:02d}.mp4" for n in range(30)])
    with committed() as s:
        project = create_project(s, name=f"bucket-{unique}")
        admin = create_user(s, Role.admin, username=f"bucket-admin-{unique}")
        cleanup["projects"].append(project.id)
        cleanup["users"].append(admin.id)
        project_id, username = project.id, admin.username

    sign_in(page, live_server, username, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    page.click("text=Bring clips in from a bucket")
    page.wait_for_url(f"**/projects/{project_id}/sources")
    page.fill("#source-url", f"s3://{bucket}/show/")
    page.fill("#source-endpoint_url", object_store.endpoint)
    page.fill("#source-region", REGION)
    page.fill("#source-access_key_id", ACCESS_KEY)
    page.fill("#source-secret_access_key", "a-mistyped-secret")
    page_checks.expect_http_errors(422, rf"/projects/{project_id}/sources$")
    page.click("text=Register and sync")

    expect(page.locator("[data-testid=form-errors]")).to_contain_text("refused these keys")
    expect(page.locator("#source-url")).to_have_value(f"s3://{bucket}/show/")
    expect(page.locator("#source-endpoint_url")).to_have_value(object_store.endpoint)
    expect(page.locator("#source-access_key_id")).to_have_value(ACCESS_KEY)
    expect(page.locator("#source-secret_access_key")).to_have_value("")
    page.fill("#source-secret_access_key", SECRET_KEY)
    page.click("text=Register and sync")

    row = page.locator(f"tr[data-source='s3://{bucket}/show/']")
    expect(row.locator("[data-testid=source-state]")).to_have_text("synced", timeout=60_000)
    expect(row.locator("[data-testid=source-count]")).to_have_text("30")
    expect(row).to_contain_text(f"{ACCESS_KEY}, secret set")
    assert SECRET_KEY not in page.content()

    put_objects(object_store, bucket, ["show/a-new.mp4", "show/z-new.mov", "show/readme.md"])
    row.locator("text=Sync now").click()
    expect(row.locator("[data-testid=source-count]")).to_have_text("32", timeout=60_000)
    expect(row.locator("[data-testid=source-state]")).to_have_text("synced")

    expect(row.locator("[data-testid=source-unprocessed]")).to_have_text("32")
    row.locator("text=Process now").click()
    expect(page.locator("[data-testid=notice]")).to_contain_text(
        f"Processing 32 clips of s3://{bucket}/show/ in the background"
    )
    # The worker hands them to the pipeline; the table follows without a reload.
    expect(row.locator("[data-testid=source-unprocessed]")).to_have_text("0", timeout=60_000)
    expect(row.locator("[data-testid=source-state]")).to_have_text("synced", timeout=30_000)
    expect(row.locator("text=Process now")).to_have_count(0)
    with committed() as s:  # these objects are not videos: each clip fails its probe
        clip_ids = list(s.scalars(select(Clip.id).where(Clip.project_id == project_id)))
    assert len(clip_ids) == 32
    wait_until_settled(celery_worker, clip_ids)  # before the project is deleted under the worker
