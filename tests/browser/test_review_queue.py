"""In Chromium, on either stack: once an annotator has submitted, a reviewer opens the review
queue (all batches and one batch) and sees the submitted clip with how long it has waited.

On the embedded default (SQLite) these pages were a 500: SQLite read the submission time back
without its time zone and the waiting time could not be subtracted from an aware now."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind
from app.core.db import utcnow
from tests.browser.conftest import PageChecks, sign_in, sign_out
from tests.browser.review_world import assigned_clip
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_reviewer_sees_submitted_work_with_its_waiting_time(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    page_checks: PageChecks,
) -> None:
    page_checks.expect_http_errors(404, r"^/media/clips/\d+/frames/")  # a factory clip: no media
    work = assigned_clip(committed, cleanup, unique, frames=12)
    annotator, reviewer = work.annotator, work.reviewer
    ids = {"assignment": work.assignment_id, "clip": work.clip_id, "batch": work.batch_id}

    sign_in(page, live_server, annotator.username, PASSWORD)
    page.goto(f"{live_server}/annotate/{ids['assignment']}")
    page.get_by_test_id("start").click()
    expect(page.locator("#review-panel")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("submit").click()
    page.wait_for_url("**/queue")
    sign_out(page)

    with committed() as s:  # submitted three hours ago: a waiting time nobody can mistake
        human = (Annotation.clip_id == ids["clip"]) & (Annotation.kind == AnnotationKind.human)
        ids["annotation"] = s.scalars(select(Annotation.id).where(human)).one()
        three_hours_ago = utcnow() - timedelta(hours=3)
        s.execute(update(Annotation).where(human).values(submitted_at=three_hours_ago))

    sign_in(page, live_server, reviewer.username, PASSWORD)
    for query in ("", f"?batch={ids['batch']}"):
        response = page.goto(f"{live_server}/review{query}")
        assert response is not None and response.status == 200, query
        row = page.locator(f"#review-table tr[data-annotation='{ids['annotation']}']")
        expect(row).to_contain_text(f"review-{unique}.mp4")
        expect(row).to_contain_text(annotator.username)
        expect(row.locator("td").nth(5)).to_have_text("3 h")

    queue = page.request.get(f"{live_server}/api/review/queue?batch={ids['batch']}")
    assert queue.status == 200
    (entry,) = queue.json()
    assert entry["annotation_id"] == ids["annotation"] and 2.9 < entry["age_hours"] < 3.1
