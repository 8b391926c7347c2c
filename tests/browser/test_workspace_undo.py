"""In Chromium: one undo history for the whole workspace. Undo shows the frame it changes
before changing it, takes back server-side actions (interpolate, copy previous, accept) and
held-run edits as one step each, saves like any edit, and never overwrites someone else's
newer save (it says so instead). Redo puts a step back."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.annotations.keypoint_edits import save_frame
from app.annotations.payload import frame_payload
from app.auth.models import User
from app.clips.models import Clip
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
    NOSE,
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    drag,
    go,
    open_next_clip,
    session,
    shown_point,
    stored_frame,
)

pytestmark = pytest.mark.browser
HELD = (12, 16)  # frames 12-15 show one drawing; every other frame is its own


@pytest.fixture(autouse=True, scope="module")
def one_held_run(draft_clip: DraftClip) -> Iterator[None]:
    """The shared clip with a single held run while this module runs."""
    with session() as s, s.begin():
        s.get_one(Clip, draft_clip.clip_id).held_runs = [list(HELD)]
    yield
    with session() as s, s.begin():
        s.get_one(Clip, draft_clip.clip_id).held_runs = draft_clip.held_runs


def _status(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("save-status")).to_have_text(re.compile(pattern))


def _shown(page: Page, frame: int) -> None:
    expect(page.locator("#workspace")).to_have_attribute("data-shown", str(frame))


def _states(track_id: int, frames: range) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {f: stored_frame(track_id, f)[:2] for f in frames}


def _same(track_id: int, frame: int, state: tuple[np.ndarray, np.ndarray]) -> bool:
    pose, human, _ = stored_frame(track_id, frame)
    return bool(np.allclose(pose, state[0], atol=1e-3) and np.array_equal(human, state[1]))


def test_undo_walks_back_through_copy_interpolate_keyframe_and_drag(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    tid = opened.track_id
    model = _states(tid, range(12))
    page.keyboard.press("k")  # frame 0 is a keyframe
    _status(page, "^saved frame 0")
    go(page, 10)
    drag(page, LEFT_WRIST, 30, 20)
    dropped = shown_point(page, LEFT_WRIST)
    page.keyboard.press("k")
    page.keyboard.press("i")
    _status(page, "^interpolate: done")
    go(page, 11)
    page.keyboard.press("c")
    _status(page, "^copy previous drawing: done")
    assert stored_frame(tid, 11)[0][LEFT_WRIST, :2] == pytest.approx(dropped[:2], abs=0.02)

    # Ctrl+Z takes back what was done last, on the frame that is shown.
    page.keyboard.press("Control+z")
    _status(page, "^undid copy previous drawing on frame 11")
    _shown(page, 11)
    assert _same(tid, 11, model[11])
    assert stored_frame(tid, 10)[0][LEFT_WRIST, :2] == pytest.approx(dropped[:2], abs=0.02)

    # The interpolation is one step: the editor goes to frame 10 and frames 1-9 are the model's.
    page.keyboard.press("Control+z")
    _status(page, "^undid interpolation 0-10 on frame 10")
    _shown(page, 10)
    assert all(_same(tid, f, model[f]) for f in range(1, 10))

    page.keyboard.press("Control+z")
    _status(page, "^undid keyframe mark on frame 10")
    assert not stored_frame(tid, 10)[2].is_keyframe
    page.keyboard.press("Control+z")
    _status(page, "^undid point edit on frame 10")
    assert _same(tid, 10, model[10])  # the model's point again, as the model's
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx(
        model[10][0][LEFT_WRIST, :2], abs=0.02
    )

    page.keyboard.press("Control+Shift+z")
    _status(page, "^redid point edit on frame 10")
    pose, human, _ = stored_frame(tid, 10)
    assert pose[LEFT_WRIST, :2] == pytest.approx(dropped[:2], abs=0.02) and human[LEFT_WRIST]
    assert shown_point(page, LEFT_WRIST)[:2] == pytest.approx(dropped[:2], abs=0.02)


@pytest.mark.expect_http_errors(409)  # the refused undo
def test_undo_takes_back_a_held_run_edit_and_accepting_as_one_step_each_and_never_overwrites(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    tid = opened.track_id
    model = _states(tid, range(*HELD))

    go(page, 20)
    page.click("[data-action=accept]")
    _status(page, r"^accepted \d+ point")
    assert stored_frame(tid, 20)[1].any()
    page.keyboard.press("Control+z")
    _status(page, "^undid accepting")
    assert not stored_frame(tid, 20)[1].any()

    page.check("[data-testid=apply-held]")
    go(page, 13)
    drag(page, NOSE, -20, 10)
    _status(page, "^saved frame 13 and its held run")
    page.keyboard.press("Control+z")
    _status(page, "^undid point edit on frame 13")
    assert all(_same(tid, f, model[f]) for f in range(*HELD))
    page.keyboard.press("Control+y")
    _status(page, "^redid point edit on frame 13")
    redone = _states(tid, range(*HELD))
    assert all(redone[f][1][NOSE] for f in range(*HELD))

    # Someone else saves frame 14 meanwhile: undo refuses and says so; their save stays.
    with session() as s, s.begin():
        _, _, row = stored_frame(tid, 14)
        frame = frame_payload(row)
        user = s.scalar(select(User).where(User.username == annotator))
        assert user is not None
        theirs = [p[:3] for p in frame["points"]]
        theirs[NOSE] = [5.0, 5.0, 2]
        save_frame(s, user, tid, 14, theirs, frame["version"])
    page.keyboard.press("Control+z")
    _status(page, "^Could not undo point edit: frame 14 was changed by someone else")
    assert stored_frame(tid, 14)[0][NOSE, :2] == pytest.approx([5.0, 5.0])
    assert all(_same(tid, f, redone[f]) for f in (12, 13, 15))


def test_undo_brings_back_a_deleted_character_with_its_keypoints_and_removes_an_added_one(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    characters = page.locator("[data-testid=track-select] option")
    page.uncheck("[data-testid=apply-held]")
    go(page, 3)
    drag(page, LEFT_WRIST, 25, 0)
    dropped = shown_point(page, LEFT_WRIST)
    _status(page, "^saved frame 3")

    page.locator("summary", has_text="Add a character").click()
    page.fill("#add-character input[name=name]", "sidekick")
    page.click("#add-character button[type=submit]")
    expect(characters).to_have_count(2)
    page.keyboard.press("Control+z")
    _status(page, "^undid adding sidekick")
    expect(characters).to_have_count(1)

    page.select_option("[data-testid=track-select]", str(opened.track_id))
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-action=deleteCharacter]")
    expect(characters).to_have_count(0)
    page.keyboard.press("Control+z")
    _status(page, "^undid deleting character 1")
    expect(characters).to_have_count(1)
    new_track = int(page.eval_on_selector("[data-testid=track-select]", "s => s.value"))
    pose, human, _ = stored_frame(new_track, 3)
    assert pose[LEFT_WRIST, :2] == pytest.approx(dropped[:2], abs=0.02) and human[LEFT_WRIST]
    assert human.sum() == 1  # the other points are still the model's

    page.keyboard.press("Control+Shift+z")  # redo the deletion, then undo it again
    expect(characters).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(characters).to_have_count(1)
    _status(page, "^undid deleting character 1")
