"""In Chromium: an admin lets a project take free-text tags; the annotator types a new venue in
the workspace's tag editor and it is saved and shown like the vocabulary's tags; a malformed
tag, or any typed tag once the project stops allowing them, is refused in place."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.annotations.models import Annotation
from app.auth.models import Role
from app.projects.models import Project
from tests.browser.conftest import PageChecks, sign_in, sign_out
from tests.browser.test_home import assigned_clip
from tests.factories import PASSWORD, create_user

pytestmark = pytest.mark.browser

Committed = Callable[[], AbstractContextManager[Session]]


def test_free_text_tags_are_typed_saved_and_refused_in_place(
    live_server: str,
    page: Page,
    unique: str,
    tmp_path: Path,
    committed: Committed,
    cleanup: dict[str, list[int]],
    page_checks: PageChecks,
) -> None:
    # The refusals this test provokes come back as the re-rendered form (422).
    page_checks.expect_http_errors(422, r"^/annotations/(\d+/tags|characters/\d+/emotions)$")
    work = assigned_clip(committed, cleanup, unique, tmp_path)
    with committed() as s:
        admin = create_user(s, Role.admin, username=f"tags-admin-{unique}")
        cleanup["users"].append(admin.id)

    # The admin allows free-text tags in the project's settings.
    sign_in(page, live_server, admin.username, PASSWORD)
    page.goto(f"{live_server}/projects/{work.project_id}")
    page.check("input[name=allow_free_tags]")
    page.click("text=Save settings")
    expect(page.locator("#settings [role=status]")).to_have_text("Settings saved.")
    sign_out(page)

    # The annotator types a venue the vocabulary lacks: saved, shown as a chosen chip.
    sign_in(page, live_server, work.username, PASSWORD)
    page.goto(f"{live_server}/annotate/{work.assignment_id}")
    new_venue = page.locator("#tags input[name=new-venue]")
    new_venue.fill("space ship")
    new_venue.press("Enter")
    typed_chip = page.locator("#tags label[data-free-tag]", has_text="space ship")
    expect(typed_chip.locator("input")).to_be_checked()
    expect(page.locator("#tags .saved")).to_have_text("tags saved")
    with committed() as s:
        assert s.get_one(Annotation, work.annotation_id).tags["venue"] == "space_ship"

    # Another workspace panel refusing its form (an emotion range past the clip's end) says so
    # in place and keeps the row as typed.
    emotions = page.locator(".emotion-form").first
    emotions.locator("input[name=start]").last.fill("2")
    emotions.locator("input[name=end]").last.fill("900")
    emotions.locator("select[name=label]").last.select_option(index=1)
    emotions.locator("button[type=submit]").click()
    emotions = page.locator(".emotion-form").first
    expect(emotions.get_by_test_id("form-errors")).to_contain_text("outside the clip")
    expect(emotions.locator("input[name=end]").last).to_have_value("900")
    # A range typed backwards is named as such, not as outside the clip.
    emotions.locator("input[name=start]").last.fill("8")
    emotions.locator("input[name=end]").last.fill("3")
    emotions.locator("button[type=submit]").click()
    emotions = page.locator(".emotion-form").first
    expect(emotions.get_by_test_id("form-errors")).to_contain_text(
        "Emotion range 8-3: the end frame (excluded) must come after the start."
    )
    expect(emotions.locator("input[name=start]").last).to_have_value("8")
    expect(page.locator("#toast")).to_be_hidden()

    # A malformed tag is refused beside its box, with what was typed kept.
    new_venue = page.locator("#tags input[name=new-venue]")
    new_venue.fill("rooftop/garden!")
    new_venue.press("Enter")
    new_venue = page.locator("#tags input[name=new-venue]")
    expect(new_venue).to_have_attribute("aria-invalid", "true")
    expect(new_venue).to_have_value("rooftop/garden!")
    error = page.locator(f"#{new_venue.get_attribute('aria-describedby')}")
    expect(error).to_contain_text("letters, digits")
    expect(page.locator("#toast")).to_be_hidden()

    # Once the project stops allowing them, a typed tag is refused in place.
    with committed() as s:
        s.get_one(Project, work.project_id).allow_free_tags = False
    new_venue.fill("rooftop")
    new_venue.press("Enter")
    refusal = page.locator("#tags [data-testid=form-errors]")
    expect(refusal).to_contain_text("takes only the listed tags")
    expect(page.locator("#tags input[name=new-venue]")).to_have_count(0)
    with committed() as s:
        assert s.get_one(Annotation, work.annotation_id).tags["venue"] == "space_ship"
