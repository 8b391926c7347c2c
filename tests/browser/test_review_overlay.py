"""In Chromium: what the review panel draws on the stage for a reviewer (through the stage's
overlay list): an open rejection's region and the ring round its pinned point, the model
draft when asked, and the annotator's skeleton only while "annotator version" is ticked."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page
from sqlalchemy.orm import Session

from app.annotations.tree import get_node
from app.review.comments import Pin
from app.review.workflow import reject
from tests.browser.review_world import open_review, submitted_clip

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]

WRIST = 9  # COCO left wrist; the factory draft puts it at (109, 59) on frame 0
REGION = {"x": 10.0, "y": 120.0, "w": 80.0, "h": 80.0}  # clear of the skeleton

# The stage's pixel (canvas RGB) at clip pixel (x, y), optionally `r` canvas pixels away at
# `angle` (radians): a look at what the overlay drew.
PIXEL = """([x, y, r = 0, angle = 0]) => {
    const st = window.CelLabelWorkspace.stage;
    const cx = Math.round(st.ox + x * st.scale + r * Math.cos(angle));
    const cy = Math.round(st.oy + y * st.scale + r * Math.sin(angle));
    return Array.from(st.ctx.getImageData(cx, cy, 1, 1).data.slice(0, 3));
}"""


def _pixel(page: Page, x: float, y: float, r: float = 0, angle: float = 0) -> list[int]:
    return list(page.evaluate(PIXEL, [x, y, r, angle]))


def _red(rgb: list[int]) -> bool:
    return rgb[0] > 200 and rgb[1] < 110 and rgb[2] < 110


def test_the_review_overlay_draws_pins_and_the_model_draft_for_a_reviewer(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    world = submitted_clip(committed, cleanup, unique)
    with committed() as s:
        node, _ = get_node(s, "track", world.nodes["track"])
        pin = Pin(frame=0, point=WRIST, region=REGION)
        reject(s, world.reviewer, "track", node.id, node.version, "wrong_keypoint",
               "The wrist is off.", pin)  # fmt: skip

    open_review(page, live_server, world.reviewer, world.annotation_id)
    x, y = page.evaluate(f"window.CelLabelWorkspace.stage.points[{WRIST}].slice(0, 2)")
    assert _pixel(page, x, y) != [17, 17, 17]  # the annotator's skeleton is drawn

    page.get_by_test_id("show-final").uncheck()
    assert _pixel(page, x, y) == [17, 17, 17]  # the frame's background (no image): no skeleton
    assert _red(_pixel(page, REGION["x"], REGION["y"] + REGION["h"] / 2))  # the region's edge
    assert not _red(_pixel(page, REGION["x"] + REGION["w"] / 2, REGION["y"] + REGION["h"] / 2))
    ring = [_red(_pixel(page, x, y, 9, k * 3.14159 / 4)) for k in range(8)]
    assert sum(ring) >= 6, ring  # the ring round the pinned point

    page.get_by_test_id("show-model").check()
    r, g, b = _pixel(page, x, y)
    assert r > 150 and abs(r - g) < 20 and abs(r - b) < 20  # the model draft's grey dot
