"""In Chromium: the upload form says when no file is chosen, a long or right-to-left-tricked
file name cannot stretch or flip the clips table, and a clip whose pipeline failed (a text file
renamed .mp4, an empty file) is retried and deleted from its page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips.models import Clip, ClipState
from app.pipeline import intake
from app.pipeline.models import Job
from app.projects.models import Project
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, create_project, create_user, local_media

pytestmark = pytest.mark.browser

Committed = Callable[[], AbstractContextManager[Session]]


def _admin_and_project(
    committed: Committed, cleanup: dict[str, list[int]], unique: str
) -> tuple[str, int]:
    with committed() as s:
        project = create_project(s, name=f"upload-{unique}")
        admin = create_user(s, Role.admin, username=f"upload-admin-{unique}")
        cleanup["projects"].append(project.id)
        cleanup["users"].append(admin.id)
        return admin.username, project.id


def test_upload_without_a_file_says_so_in_place(
    live_server: str, page: Page, unique: str, committed: Committed, cleanup: dict[str, list[int]]
) -> None:
    admin, project_id = _admin_and_project(committed, cleanup, unique)
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    page.click("#upload-form button[type=submit]")
    message = page.locator("#upload-message")
    expect(message).to_have_text("Choose one or more video files first.")
    expect(page.get_by_test_id("upload-input")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("upload-input")).to_be_focused()


def test_long_and_right_to_left_file_names_neither_stretch_nor_flip_the_table(
    live_server: str, page: Page, unique: str, committed: Committed, cleanup: dict[str, list[int]]
) -> None:
    admin, project_id = _admin_and_project(committed, cleanup, unique)
    long_name = "a-very-long-name-" * 14 + "x.mp4"  # 243 characters
    tricked = "invoice\u202egpj.mp4"  # reads "invoicemp4.jpg" when the override acts
    with committed() as s:
        project = s.get_one(Project, project_id)
        for name in (long_name, tricked):
            intake.import_stream(s, project, io.BytesIO(name.encode()), name)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    names = page.locator("#clip-table [data-testid=clip-name]")
    expect(names).to_have_count(2)
    widest = page.evaluate("document.documentElement.scrollWidth")
    assert widest <= 1280, f"the page is {widest} px wide"
    long_cell = names.filter(has_text="a-very-long-name-")
    expect(long_cell).to_have_attribute("title", long_name)
    shown = page.locator("#clip-table [data-testid=clip-name]", has_text="invoice")
    expect(shown).to_have_text("invoice<U+202E>gpj.mp4")
    assert "\u202e" not in shown.inner_text()

    # The clip page shows the whole long name, wrapped inside the page.
    long_cell.locator("xpath=ancestor::tr//a").first.click()
    expect(page.locator("h1")).to_contain_text(long_name)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


@pytest.mark.worker
def test_a_failed_clip_is_retried_and_deleted_from_its_page(
    live_server: str,
    page: Page,
    unique: str,
    tmp_path: Path,
    celery_worker: object,
    committed: Committed,
    cleanup: dict[str, list[int]],
) -> None:
    admin, project_id = _admin_and_project(committed, cleanup, unique)
    renamed, empty = tmp_path / "notes.mp4", tmp_path / "empty.mp4"
    renamed.write_text("meeting notes, not a video\n" * 20)
    empty.write_bytes(b"")
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    page.set_input_files("[data-testid=upload-input]", [str(renamed), str(empty)])
    page.click("#upload-form button[type=submit]")
    rows = page.locator("#clip-table tr[data-clip]")
    expect(rows).to_have_count(2, timeout=30_000)
    for i in range(2):  # the table polls itself until the pipeline is done
        expect(rows.nth(i)).to_have_attribute("data-state", "failed", timeout=120_000)

    # Retry: the whole pipeline runs again (and, the file being what it is, fails again).
    rows.filter(has_text="notes.mp4").locator("a").first.click()
    page.wait_for_url(re.compile(r"/clips/\d+$"))
    clip_id = int(page.url.rsplit("/", 1)[1])
    probe_finished = select(Job.finished_at).where(Job.clip_id == clip_id, Job.step == "probe")
    with committed() as s:
        before = s.scalar(probe_finished)
    page.get_by_test_id("retry-clip").click()
    page.wait_for_url(re.compile(rf"/clips/{clip_id}$"))
    expect(page.get_by_test_id("clip-state")).to_have_text("failed", timeout=120_000)
    with committed() as s:
        after = s.scalar(probe_finished)
        source = local_media().path(s.get_one(Clip, clip_id).storage_key)
    assert before is not None and after is not None and after > before
    expect(page.get_by_test_id("clip-error")).to_be_visible()

    # Delete, after confirming: back on the list without it, its file gone.
    assert source.is_file()
    page.get_by_test_id("delete-clip").locator("summary").click()
    page.get_by_role("button", name=f"Delete clip {clip_id}").click()
    page.wait_for_url(re.compile(rf"/clips\?project={project_id}$"))
    expect(page.locator(f"#clip-table tr[data-clip='{clip_id}']")).to_have_count(0)
    expect(page.locator("#clip-table tr[data-clip]")).to_have_count(1)
    with committed() as s:
        assert s.get(Clip, clip_id) is None
        assert s.scalar(select(Clip.state).where(Clip.project_id == project_id)) == ClipState.failed
    assert not source.exists()
