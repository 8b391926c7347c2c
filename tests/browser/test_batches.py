"""In Chromium: an admin builds a batch from a filter, assigns it with overlap and gold, and
annotators find their clips in their own queues while the admin's progress refreshes itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from tests.browser.conftest import PageChecks, sign_in, sign_out
from tests.factories import PASSWORD, approve_truth, create_project, create_ready_clips, create_user

pytestmark = pytest.mark.browser


def test_admin_builds_and_assigns_a_batch_annotators_see_their_queues(
    live_server: str,
    page: Page,
    new_page: Callable[[], Page],
    page_checks: PageChecks,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    probed = {"frame_count": 48, "fps": 24.0, "width": 320, "height": 240, "duration_s": 2.0}
    with committed() as s:
        project = create_project(s, name=f"browser-{unique}")
        cleanup["projects"].append(project.id)
        create_ready_clips(s, project, 10, source_tags={"venue": "indoor"}, **probed)
        create_ready_clips(s, project, 3, source_tags={"venue": "outdoor"}, **probed)
        for clip in create_ready_clips(s, project, 2, source_tags={"venue": "studio"}, **probed):
            approve_truth(s, clip)
        users = {
            name: create_user(s, role, username=f"{name}-{unique}")
            for name, role in [("admin", Role.admin), ("ann1", Role.annotator),
                               ("ann2", Role.annotator), ("rev", Role.reviewer)]
        }  # fmt: skip
        cleanup["users"].extend(u.id for u in users.values())
        names = {key: u.username for key, u in users.items()}

    # The admin builds a batch from a filter; the count preview follows the form.
    # Known (issue 18 item 10, fixed on its own branch): the preview fires before a project
    # is chosen and is refused. The factory clips have no frame images.
    page_checks.expect_http_errors(404, r"^/media/clips/\d+/frames/")
    sign_in(page, live_server, names["admin"], PASSWORD)
    page.goto(f"{live_server}/batches")
    page.fill("input[name=name]", f"indoor-{unique}")
    page.select_option("select[name=project_id]", label=f"browser-{unique}")
    expect(page.get_by_test_id("match-count")).to_have_text("15")
    page.fill("input[name=tags]", "venue=indoor")
    page.press("input[name=tags]", "Tab")
    expect(page.get_by_test_id("match-count")).to_have_text("10")
    page.click("text=Create batch")
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    batch_url = page.url

    # Assign to two annotators and a reviewer: overlap 2 on 50 %, gold 20 %.
    for key in ("ann1", "ann2"):
        page.check(f"input[name=annotators][value='{names[key]}']")
    page.check(f"input[name=reviewers][value='{names['rev']}']")
    page.fill("input[name=overlap_k]", "2")
    page.fill("input[name=overlap_pct]", "50")
    page.fill("input[name=gold_pct]", "20")
    page.click("#assign-form button[type=submit]")
    expect(page.get_by_role("status")).to_contain_text("5 clips overlapped, 2 gold clips")
    expect(page.locator("#progress")).to_contain_text("12 clips (5 overlapped, 2 gold)")
    expect(page.get_by_test_id("handed-out")).to_have_text("0")
    for key in ("ann1", "ann2", "rev"):
        expect(page.locator(f"[data-member='{names[key]}']")).to_be_visible()

    # Each annotator, in their own browser, takes the next clip from their queue.
    taken: dict[str, str] = {}
    for key in ("ann1", "ann2"):
        ann_page = new_page()
        sign_in(ann_page, live_server, names[key], PASSWORD)
        ann_page.goto(f"{live_server}/queue")
        expect(ann_page.locator("#queue")).to_contain_text("Nothing assigned yet")
        ann_page.click("text=Next clip")
        ann_page.wait_for_url(re.compile(r"/annotate/\d+$"))
        taken[key] = ann_page.url.rsplit("/", 1)[1]
        ann_page.goto(f"{live_server}/queue")
        rows = ann_page.locator("#queue tbody tr[data-assignment]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-assignment", taken[key])
        expect(rows.first).to_contain_text(f"indoor-{unique}")
        assert "gold" not in ann_page.content().lower()
        sign_out(ann_page)
    assert taken["ann1"] != taken["ann2"]

    # The admin's progress panel refreshes itself (HTMX polling) without a reload.
    assert page.url.split("?")[0] == batch_url
    expect(page.get_by_test_id("handed-out")).to_have_text("2", timeout=12_000)
    expect(page.locator(f"#progress [data-annotator='{names['ann1']}']")).to_be_visible()
