"""In Chromium: an admin pages through a project's clips, searches and filters them (the URL
keeps it all, so Back and reload do too) and acts on a selection: retry, delete, make a batch."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.batches.models import Batch, BatchClip
from app.clips.models import Clip, ClipState
from app.pipeline.models import Job
from app.projects.models import Subset
from tests.browser.conftest import PageChecks, sign_in
from tests.factories import PASSWORD, create_batch, create_clip, create_project, create_user

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]

PAGE = 50


@dataclass
class Library:
    project_id: int
    admin: str
    walks: list[int]  # 52 ready pose clips, venue=indoor
    dances: list[int]  # 3 failed i2v clips, venue=outdoor
    batched: list[int]  # 2 of the walks, in a batch
    batch_name: str
    other_project: str  # a second project with one clip, only_here.mp4


@pytest.fixture
def library(
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> Library:
    with committed() as s:
        project = create_project(s, name=f"list-{unique}", subsets=[Subset.pose, Subset.i2v])
        cleanup["projects"].append(project.id)
        admin = create_user(s, Role.admin, username=f"list-admin-{unique}")
        cleanup["users"].append(admin.id)
        walks = [
            create_clip(s, project, filename=f"walk_{i:03}.mp4", state=ClipState.ready,
                        subsets=["pose"], source_tags={"venue": "indoor"})
            for i in range(52)
        ]  # fmt: skip
        dances = [
            create_clip(s, project, filename=f"dance_{i}.mp4", state=ClipState.failed,
                        subsets=["i2v"], source_tags={"venue": "outdoor"}, error="no video stream")
            for i in range(3)
        ]  # fmt: skip
        batch = create_batch(s, project, walks[:2], name=f"early-{unique}")
        other = create_project(s, name=f"list-other-{unique}")
        cleanup["projects"].append(other.id)
        create_clip(s, other, filename="only_here.mp4")
        return Library(
            project.id, admin.username, [c.id for c in walks], [c.id for c in dances],
            [c.id for c in walks[:2]], batch.name, other.name,
        )  # fmt: skip


def _shown(page: Page) -> list[int]:
    rows = page.locator("#clip-table tbody tr[data-clip]")
    return [int(v) for v in rows.evaluate_all("rs => rs.map(r => r.dataset.clip)")]


def _expect_rows(page: Page, count: int) -> None:
    expect(page.locator("#clip-table tbody tr[data-clip]")).to_have_count(count)


def test_pages_search_and_filters_live_in_the_url(
    page: Page, live_server: str, library: Library
) -> None:
    every = sorted(library.walks + library.dances, reverse=True)  # newest first
    sign_in(page, live_server, library.admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={library.project_id}")
    _expect_rows(page, PAGE)
    assert _shown(page) == every[:PAGE]
    expect(page.get_by_role("link", name="← Newer")).to_have_count(0)

    # Forward one page and back: the same clips each time, and the browser's Back agrees.
    page.get_by_role("link", name="Older →").click()
    _expect_rows(page, len(every) - PAGE)
    expect(page).to_have_url(re.compile(r"before=\d+"))
    assert _shown(page) == every[PAGE:]
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newer").click()
    _expect_rows(page, PAGE)
    assert _shown(page) == every[:PAGE]
    page.go_back()
    _expect_rows(page, len(every) - PAGE)
    assert _shown(page) == every[PAGE:]
    page.reload()
    assert _shown(page) == every[PAGE:]
    page.goto(f"{live_server}/clips?project={library.project_id}")

    # Search by name.
    page.fill("input[name=q]", "dance_")
    _expect_rows(page, 3)
    expect(page).to_have_url(re.compile(r"q=dance_"))
    assert _shown(page) == sorted(library.dances, reverse=True)
    page.fill("input[name=q]", "walk_05")
    _expect_rows(page, 2)  # walk_050, walk_051
    page.fill("input[name=q]", "")
    _expect_rows(page, PAGE)

    # Each filter on its own.
    page.select_option("select[name=state]", "failed")
    _expect_rows(page, 3)
    expect(page).to_have_url(re.compile(r"state=failed"))
    page.select_option("select[name=state]", "")
    _expect_rows(page, PAGE)
    page.select_option("select[name=subset]", "i2v")
    _expect_rows(page, 3)
    page.select_option("select[name=subset]", "")
    page.fill("input[name=tag]", "venue=outdoor")
    page.press("input[name=tag]", "Enter")
    _expect_rows(page, 3)
    expect(page).to_have_url(re.compile(r"tag=venue%3Doutdoor"))
    page.fill("input[name=tag]", "venue")
    page.press("input[name=tag]", "Enter")
    expect(page.get_by_test_id("filter-error")).to_contain_text("key=value")
    expect(page.locator("input[name=tag]")).to_have_value("venue")
    page.fill("input[name=tag]", "")
    page.press("input[name=tag]", "Enter")
    _expect_rows(page, PAGE)
    page.select_option("select[name=batch]", label=library.batch_name)
    _expect_rows(page, 2)
    assert sorted(_shown(page)) == sorted(library.batched)

    # Back from a clip's page keeps the filter, in the form and in the table.
    page.select_option("select[name=batch]", "")
    _expect_rows(page, PAGE)
    page.select_option("select[name=state]", "failed")
    _expect_rows(page, 3)
    page.locator(f"#clip-table tr[data-clip='{library.dances[0]}'] a").first.click()
    page.wait_for_url(re.compile(rf"/clips/{library.dances[0]}$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"state=failed"))
    _expect_rows(page, 3)
    expect(page.locator("select[name=state]")).to_have_value("failed")
    page.go_back()  # one more Back: the unfiltered list, as it was
    _expect_rows(page, PAGE)
    expect(page.locator("select[name=state]")).to_have_value("")

    # Another project is another page: its own clips, and the filters start afresh.
    page.select_option("select[name=project]", label=library.other_project)
    expect(page.get_by_role("heading", name=f"Clips in {library.other_project}")).to_be_visible()
    _expect_rows(page, 1)
    expect(page.locator("#clip-table tbody")).to_contain_text("only_here.mp4")


def test_select_then_retry_delete_and_batch(
    page: Page,
    live_server: str,
    library: Library,
    committed: Callable[[], AbstractContextManager[Session]],
    page_checks: PageChecks,
) -> None:
    page_checks.expect_http_errors(422, r"^/clips/bulk$")  # the unnamed batch, refused in place
    sign_in(page, live_server, library.admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={library.project_id}&state=failed")
    _expect_rows(page, 3)
    status = page.get_by_test_id("bulk-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("No clips selected.")
    expect(page.get_by_role("button", name="Retry pipeline")).to_be_disabled()

    # Keyboard: a checkbox takes focus and Space ticks it; the bar says so.
    first = page.get_by_role("checkbox", name=f"Select clip {max(library.dances)}", exact=True)
    first.focus()
    page.keyboard.press("Space")
    expect(status).to_have_text("1 of 3 clips on this page selected.")
    page.get_by_role("checkbox", name="Select all clips on this page").check()
    expect(status).to_have_text("3 of 3 clips on this page selected.")

    # Retry the failed clips' pipeline: back on the same filtered page, saying what happened.
    page.get_by_role("button", name="Retry pipeline").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Queued the pipeline again for 3 clips")
    expect(page).to_have_url(re.compile(r"state=failed"))
    with committed() as s:
        states = s.scalars(select(Clip.state).where(Clip.id.in_(library.dances))).all()
        assert set(states) == {ClipState.processing}
        jobs = s.scalars(select(Job.clip_id).where(Job.clip_id.in_(library.dances))).all()
        assert set(jobs) == set(library.dances)

    # A batch from a shift-click range of three walks on the first page.
    page.goto(f"{live_server}/clips?project={library.project_id}&q=walk_")
    _expect_rows(page, PAGE)
    shown = _shown(page)
    page.get_by_role("checkbox", name=f"Select clip {shown[0]}", exact=True).click()
    page.get_by_role("checkbox", name=f"Select clip {shown[2]}", exact=True).click(
        modifiers=["Shift"]
    )
    expect(status).to_have_text(f"3 of {PAGE} clips on this page selected.")
    page.get_by_role("button", name="Create batch").click()  # no name yet: said, selection kept
    expect(page.get_by_test_id("bulk-error")).to_have_text("Give the new batch a name.")
    expect(page.locator("#clip-table input[name=clip_ids]:checked")).to_have_count(3)
    page.fill("input[name=batch_name]", f"picked-{library.batch_name}")
    page.get_by_role("button", name="Create batch").click()
    page.wait_for_url(re.compile(r"/batches/\d+"))
    expect(page.locator(".notice")).to_contain_text("created from 3 selected clips")
    with committed() as s:
        batch = s.scalars(select(Batch).where(Batch.name == f"picked-{library.batch_name}")).one()
        in_batch = s.scalars(select(BatchClip.clip_id).where(BatchClip.batch_id == batch.id))
        assert sorted(in_batch) == sorted(shown[:3])

    # Delete two clips, one of them in a batch: asked first, then the free one goes.
    free = library.walks[2]  # walk_002: in no batch
    page.goto(f"{live_server}/clips?project={library.project_id}&q=walk_00")
    target = [free, library.batched[0]]
    for clip_id in target:
        page.get_by_role("checkbox", name=f"Select clip {clip_id}", exact=True).check()
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 2 clips?")).to_be_visible()
    expect(page.get_by_test_id("delete-list").locator("li")).to_have_count(2)
    page.get_by_role("button", name="Delete 2 clips").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Deleted 1 clip.")
    expect(page.get_by_test_id("notice")).to_contain_text(library.batch_name)
    expect(page).to_have_url(re.compile(r"q=walk_00"))
    expect(page.locator(f"#clip-table tr[data-clip='{free}']")).to_have_count(0)
    expect(page.locator(f"#clip-table tr[data-clip='{library.batched[0]}']")).to_have_count(1)
    with committed() as s:
        assert s.get(Clip, free) is None


def test_filters_pages_and_bulk_delete_work_without_javascript(
    browser: Browser, live_server: str, library: Library
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server, library.admin, PASSWORD)
        page.goto(f"{live_server}/clips?project={library.project_id}")
        page.get_by_role("link", name="Older →").click()
        _expect_rows(page, len(library.walks) + len(library.dances) - PAGE)
        page.goto(f"{live_server}/clips?project={library.project_id}")
        page.select_option("select[name=state]", "failed")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"state=failed"))
        _expect_rows(page, 3)
        page.get_by_role("checkbox", name=f"Select clip {library.dances[0]}", exact=True).check()
        page.get_by_role("button", name="Delete…").click()
        page.get_by_role("button", name="Delete 1 clip").click()
        expect(page.get_by_test_id("notice")).to_contain_text("Deleted 1 clip.")
        expect(page).to_have_url(re.compile(r"state=failed"))
        _expect_rows(page, 2)
    finally:
        context.close()


def test_a_selection_survives_while_the_table_follows_the_pipeline(
    page: Page,
    live_server: str,
    library: Library,
    committed: Callable[[], AbstractContextManager[Session]],
) -> None:
    busy = library.dances[0]
    with committed() as s:
        s.get_one(Clip, busy).state = ClipState.processing
    sign_in(page, live_server, library.admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={library.project_id}&subset=i2v")
    row = page.locator(f"#clip-table tr[data-clip='{busy}']")
    expect(row).to_have_attribute("data-state", "processing")
    page.evaluate(
        """() => { window.polls = 0;
        document.addEventListener("htmx:beforeRequest", () => { window.polls += 1; }); }"""
    )
    page.get_by_role("checkbox", name=f"Select clip {busy}", exact=True).check()
    with committed() as s:
        s.get_one(Clip, busy).state = ClipState.ready
    page.wait_for_function("() => window.polls >= 2")  # two refreshes came due, held back
    expect(row).to_have_attribute("data-state", "processing")  # the selection is kept
    expect(page.get_by_role("checkbox", name=f"Select clip {busy}", exact=True)).to_be_checked()
    page.get_by_role("checkbox", name=f"Select clip {busy}", exact=True).uncheck()
    page.locator("h1").click()  # focus leaves the table: it follows the pipeline again
    expect(row).to_have_attribute("data-state", "ready")
