"""In Chromium: a character holds one drawing while it slides across the frame. An edit on one
frame of that held drawing, with "apply to the held drawing" on, moves every frame of the run
by the same displacement (each frame keeps its own offset), shown at once and saved; frames
outside the run stay as they were."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.annotations.models import Annotation, AnnotationKind, Character, KeypointFrame, Track
from app.media.drawings import DrawingRun
from tests.browser.workspace_helpers import (
    LEFT_WRIST,
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
from tests.factories import hold_drawings

pytestmark = pytest.mark.browser
# Frames 12-15 show one drawing of the character, sliding right and down.
SLIDE = DrawingRun(12, 16, ((1.0, 0.0, 0.0), (1.0, 6.0, 0.0), (1.0, 12.0, 4.0), (1.0, 18.0, 4.0)))


@pytest.fixture(autouse=True, scope="module")
def sliding_drawing(draft_clip: DraftClip) -> Iterator[None]:
    """The shared clip's model character holds SLIDE while this module runs (annotators who
    open the clip get it in their copy)."""
    with session() as s, s.begin():
        character = s.scalar(
            select(Character)
            .join(Annotation, Annotation.id == Character.annotation_id)
            .where(
                Annotation.clip_id == draft_clip.clip_id, Annotation.kind == AnnotationKind.model
            )
        )
        assert character is not None
        frames = (
            select(KeypointFrame)
            .join(Track, Track.id == KeypointFrame.track_id)
            .where(Track.character_id == character.id)
        )
        kept = {row.id: (row.points, row.model_points) for row in s.scalars(frames)}
        hold_drawings(s, character, [SLIDE], "twos")
        character_id = character.id
    yield
    with session() as s, s.begin():
        s.get_one(Character, character_id).drawing_runs = []
        s.get_one(Character, character_id).timing = None
        for row in s.scalars(frames):
            row.points, row.model_points = kept[row.id]


def _info(page: Page, pattern: str) -> None:
    expect(page.get_by_test_id("frame-info")).to_have_text(re.compile(pattern))


def test_a_held_run_edit_on_a_sliding_drawing_moves_every_frame_of_the_run_by_the_same_displacement(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    opened = open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    tid = opened.track_id
    expect(page.get_by_test_id("character-timing")).to_have_text("Drawn on twos · 1 held drawing")
    before = {f: stored_frame(tid, f)[0][LEFT_WRIST, :2] for f in range(11, 17)}

    go(page, 14)
    _info(page, r"held drawing 12-15 · slid 12, 4 px")
    expect(page.get_by_test_id("apply-held")).to_be_checked()
    drag(page, LEFT_WRIST, 30, 20)
    moved = np.array(shown_point(page, LEFT_WRIST)[:2]) - before[14]
    assert np.hypot(*moved) > 5
    expect(page.get_by_test_id("save-status")).to_have_text(
        re.compile("^saved frame 14 and its held run")
    )

    # Step through the run in the workspace: the wrist moved by the same amount on each frame,
    # each at its own place on the sliding drawing; the frames around the run did not move.
    go(page, 11)
    for frame in range(12, 17):
        page.keyboard.press("ArrowRight")
        expect(page.locator("#workspace")).to_have_attribute("data-shown", str(frame))
        shown = np.array(shown_point(page, LEFT_WRIST)[:2])
        expected = before[frame] + (moved if frame in SLIDE else 0)
        assert np.allclose(shown, expected, atol=0.02), (frame, shown, expected)
    _info(page, r"^frame 16 · own drawing")

    for frame in range(11, 17):  # and so it was saved
        pose, human, _ = stored_frame(tid, frame)
        expected = before[frame] + (moved if frame in SLIDE else 0)
        assert np.allclose(pose[LEFT_WRIST, :2], expected, atol=0.02), frame
        assert bool(human[LEFT_WRIST]) == (frame in SLIDE), frame
