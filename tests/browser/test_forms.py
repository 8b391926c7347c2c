"""In Chromium: a form the server refuses comes back as the same form, with what was typed and
each error beside its field in plain words; the JSON API keeps its structured errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from tests.browser.conftest import PageChecks, sign_in
from tests.factories import PASSWORD, create_project, create_ready_clips, create_user

pytestmark = pytest.mark.browser

Committed = Callable[[], AbstractContextManager[Session]]


def _admin_with_project(
    committed: Committed, cleanup: dict[str, list[int]], unique: str, clips: int = 3
) -> tuple[str, str, list[int]]:
    with committed() as s:
        project = create_project(s, name=f"forms-{unique}")
        cleanup["projects"].append(project.id)
        ids = [c.id for c in create_ready_clips(s, project, clips)]
        admin = create_user(s, Role.admin, username=f"admin-{unique}")
        cleanup["users"].append(admin.id)
    return admin.username, project.name, ids


def _expect_error_beside(page: Page, field: str, text: str) -> None:
    """The field is marked invalid and described by a visible message saying ``text``."""
    control = page.locator(f"[name={field}]:visible").first
    expect(control).to_have_attribute("aria-invalid", "true")
    described = control.get_attribute("aria-describedby")
    assert described
    expect(page.locator(f"#{described}")).to_contain_text(text)


def test_batch_page_preview_waits_for_a_project_and_explains_bad_clip_ids(
    live_server: str, page: Page, unique: str, committed: Committed, cleanup: dict[str, list[int]]
) -> None:
    admin, project, ids = _admin_with_project(committed, cleanup, unique)
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/batches")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Choose a project")
    page.select_option("select[name=project_id]", label=project)
    expect(page.get_by_test_id("match-count")).to_have_text("3")
    page.fill("textarea[name=clip_ids]", f"{ids[0]}, seven")
    page.press("textarea[name=clip_ids]", "Tab")
    expect(page.get_by_test_id("preview-problem")).to_contain_text(
        "Clip ids: Write whole numbers; these are not: seven"
    )
    expect(page.get_by_test_id("match-count")).to_have_count(0)  # no stale count beside it
    page.fill("textarea[name=clip_ids]", f"{ids[0]}, 987654321")
    page.press("textarea[name=clip_ids]", "Tab")
    expect(page.get_by_test_id("preview-problem")).to_contain_text("not in project")
    page.fill("textarea[name=clip_ids]", f"{ids[0]}, {ids[1]}")
    page.press("textarea[name=clip_ids]", "Tab")
    expect(page.get_by_test_id("match-count")).to_have_text("2")
    expect(page.locator("#toast")).to_be_hidden()  # nothing went wrong on any request


def test_refused_batch_form_keeps_what_was_typed_with_each_error_beside_its_field(
    live_server: str,
    page: Page,
    unique: str,
    committed: Committed,
    cleanup: dict[str, list[int]],
    page_checks: PageChecks,
) -> None:
    page_checks.expect_http_errors(422, r"^/batches$")  # each refusal re-renders the form
    admin, project, ids = _admin_with_project(committed, cleanup, unique)
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/batches")
    page.fill("input[name=name]", f"week-{unique}")
    page.select_option("select[name=project_id]", label=project)
    page.fill("input[name=tags]", "venue")
    page.fill("textarea[name=clip_ids]", f"{ids[0]}, {ids[1]}")
    page.fill("input[name=lease_minutes]", "90")
    page.click("text=Create batch")

    # Same page, same values, the error beside the tags field and in the summary above, which
    # names the field by its label on the page.
    expect(page.get_by_test_id("form-errors")).to_contain_text("Source tags: Write key=value")
    _expect_error_beside(page, "tags", "Write key=value, got venue")
    expect(page.locator("input[name=tags]")).to_be_focused()
    expect(page.locator("input[name=name]")).to_have_value(f"week-{unique}")
    expect(page.locator("select[name=project_id] option:checked")).to_have_text(project)
    expect(page.locator("textarea[name=clip_ids]")).to_have_value(f"{ids[0]}, {ids[1]}")
    expect(page.locator("input[name=lease_minutes]")).to_have_value("90")
    expect(page.get_by_test_id("preview-problem")).to_contain_text("Write key=value")
    assert "body." not in page.content() and "Field required" not in page.content()

    # A blank name is refused in words; the lease the validator refuses too.
    page.fill("input[name=tags]", "")
    page.press("input[name=tags]", "Tab")
    expect(page.get_by_test_id("match-count")).to_have_text("2")  # the preview follows along
    page.fill("input[name=name]", "   ")
    page.click("text=Create batch")
    _expect_error_beside(page, "name", "A batch needs a name.")
    page.fill("input[name=name]", f"week-{unique}")
    page.fill("input[name=lease_minutes]", "0")
    page.click("text=Create batch")
    _expect_error_beside(page, "lease_minutes", "Enter 1 or more.")
    expect(page.get_by_test_id("form-errors")).to_contain_text("Lease (minutes): Enter 1 or more.")

    # Fixed: the batch is created.
    page.fill("input[name=lease_minutes]", "90")
    page.click("text=Create batch")
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    expect(page.locator("h1")).to_have_text(f"week-{unique}")


def test_json_api_keeps_structured_validation_errors(
    live_server: str, page: Page, unique: str, committed: Committed, cleanup: dict[str, list[int]]
) -> None:
    admin, _, _ = _admin_with_project(committed, cleanup, unique, clips=0)
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/batches")
    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    response = page.request.post(
        f"{live_server}/api/batches", data={"project_id": "x"}, headers={"X-CSRF-Token": token}
    )
    assert response.status == 422
    body = response.json()
    assert body["error"] == "invalid"
    assert {tuple(e["loc"]) for e in body["detail"]} >= {("body", "name"), ("body", "project_id")}


def test_htmx_forms_show_refusals_in_place_with_values_kept(
    live_server: str,
    page: Page,
    unique: str,
    committed: Committed,
    cleanup: dict[str, list[int]],
    page_checks: PageChecks,
) -> None:
    page_checks.expect_http_errors(409, r"^/admin/users$")  # the taken name, refused in place
    page_checks.expect_http_errors(422, r"^/projects/\d+$")  # bad settings, refused in place
    admin, project, _ = _admin_with_project(committed, cleanup, unique, clips=0)
    sign_in(page, live_server, admin, PASSWORD)

    # Users (an HTMX form): a taken name is refused beside the field, not in a passing toast.
    page.goto(f"{live_server}/admin/users")
    page.fill("#user-form input[name=username]", admin)
    page.fill("#user-form input[name=password]", "long enough password")
    page.select_option("#user-form select[name=role]", "reviewer")
    page.click("text=Create user")
    _expect_error_beside(page, "username", "already exists")
    expect(page.locator("#user-form input[name=username]")).to_be_focused()
    expect(page.locator("#user-form input[name=username]")).to_have_value(admin)
    expect(page.locator("#user-form select[name=role]")).to_have_value("reviewer")
    expect(page.locator("#toast")).to_be_hidden()
    page.fill("#user-form input[name=username]", f"rev-{unique}")
    page.fill("#user-form input[name=password]", "long enough password")
    page.click("text=Create user")
    expect(page.locator(f"tr[data-user='rev-{unique}']")).to_be_visible()
    expect(page.get_by_test_id("form-errors")).to_have_count(0)
    with committed() as s:
        made = s.scalars(select(User).where(User.username == f"rev-{unique}")).one()
        cleanup["users"].append(made.id)

    # Project settings (HTMX): a malformed vocabulary line is refused, the guide typed is kept.
    page.goto(f"{live_server}/projects")
    page.click(f"text={project}")
    page.fill("textarea[name=caption_guide]", "Describe the motion first.")
    page.fill("textarea[name=tag_vocabulary]", "venue: indoor, outdoor\nno colon here")
    page.click("text=Save settings")
    _expect_error_beside(page, "tag_vocabulary", "Line 2: write `name: value, value`")
    expect(page.locator("textarea[name=caption_guide]")).to_have_value("Describe the motion first.")
    expect(page.locator("#toast")).to_be_hidden()
