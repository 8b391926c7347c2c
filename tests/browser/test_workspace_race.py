"""In Chromium: a frame save that loses the race at the database row (both saves passed the
version check, the other one reached the row first) opens the conflict dialog with the other
version, exactly as a save that was stale from the start does."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select, text

from app.annotations.keypoint_edits import save_frame
from app.auth.models import User
from tests.browser.conftest import PageChecks
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    open_next_clip,
    session,
    shown_point,
    stored_frame,
)
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.postgres_only]  # holds a row with FOR UPDATE


def _waiting_for_a_lock(engine: Engine) -> int:
    with engine.connect() as c:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(c.scalar(text(query)) or 0)


def test_a_save_that_loses_the_race_at_the_row_shows_the_conflict_dialog(
    live_server: str,
    page: Page,
    page_checks: PageChecks,
    engine: Engine,
    draft_clip: DraftClip,
    annotator: str,
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page_checks.expect_http_errors(409, rf"^/api/tracks/{opened.track_id}/frames/0$")
    page.uncheck("[data-testid=apply-held]")
    pose, _, row = stored_frame(opened.track_id, 0)
    theirs = [[float(x), float(y), int(v)] for x, y, v in pose[:, :3]]
    theirs[LEFT_WRIST] = [40.0, 40.0, 2]

    def save_theirs() -> None:  # the same person in another tab, through the same service
        with session() as s, s.begin():
            user = s.scalars(select(User).where(User.username == annotator)).one()
            save_frame(s, user, opened.track_id, 0, theirs, row.version)

    with ThreadPoolExecutor(1) as pool, engine.connect() as holder:
        # Hold the row: both saves read its version, pass the check and queue at the UPDATE.
        holder.execute(text("SELECT 1 FROM keypoint_frame WHERE id = :id FOR UPDATE"),
                       {"id": row.id})  # fmt: skip
        other_tab = pool.submit(save_theirs)
        wait_for(lambda: _waiting_for_a_lock(engine) == 1, 10, "the other tab's save to queue")
        drag(page, LEFT_WRIST, 30, 20)
        wait_for(lambda: _waiting_for_a_lock(engine) == 2, 10, "the browser's save to queue")
        holder.rollback()  # the other tab writes first; the browser's UPDATE then finds nothing
        other_tab.result()

    dialog = page.get_by_test_id("conflict")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".conflict-summary")).to_contain_text(f"version {row.version + 1}")
    page.click("[data-testid=take-theirs]")
    expect(dialog).to_be_hidden()
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx([40.0, 40.0], abs=0.02)
    stored, _, _ = stored_frame(opened.track_id, 0)
    assert np.allclose(stored[LEFT_WRIST, :2], [40.0, 40.0], atol=0.02)
