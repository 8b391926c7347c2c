"""In Chromium: the review tree shows its levels and each item's state. It used to be a flat
list of light-blue names on white (about 1.3:1), with the state only as a grey pill."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session

from app.annotations.tree import get_node
from app.review.workflow import approve
from tests.browser.review_world import open_review, submitted_clip

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("factory_clips_without_media")]

# WCAG 2.x contrast of an element's text against the first opaque background behind it.
CONTRAST = """(el) => {
    const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
    let back = el;
    const clear = (node) => (rgb(getComputedStyle(node).backgroundColor)[3] ?? 1) === 0;
    while (back && clear(back)) back = back.parentElement;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)),
                    lum(rgb(back ? getComputedStyle(back).backgroundColor : "rgb(255,255,255)"))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def _left(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["x"])


def test_the_tree_is_indented_with_state_badges_in_readable_contrast(
    live_server: str,
    page: Page,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    world = submitted_clip(committed, cleanup, unique)
    with committed() as s:
        shot, _ = get_node(s, "shot", world.nodes["shot"])
        approve(s, world.reviewer, "shot", shot.id, shot.version)
    open_review(page, live_server, world.reviewer, world.annotation_id)

    rows = {kind: page.get_by_test_id(f"node-{kind}-{node_id}")
            for kind, node_id in world.nodes.items()}  # fmt: skip
    names = {kind: row.locator("button.link") for kind, row in rows.items()}
    clip, character, track = (
        _left(names["annotation"]),
        _left(names["character"]),
        _left(names["track"]),
    )
    assert clip + 12 < character and character + 12 < track  # one step in per level
    assert _left(names["shot"]) == _left(names["caption"]) == character  # siblings align

    expect(rows["shot"].get_by_test_id("node-status")).to_have_text("✓ approved")
    expect(rows["track"].get_by_test_id("node-status")).to_have_text("● submitted")
    for kind in ("annotation", "track", "caption"):
        assert names[kind].evaluate(CONTRAST) >= 4.5, kind
    for kind in ("shot", "track"):
        assert rows[kind].get_by_test_id("node-status").evaluate(CONTRAST) >= 4.5, kind
