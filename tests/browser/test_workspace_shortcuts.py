"""In Chromium: the `?` sheet lists every key the workspace answers. The sheet used to be a
second, hand-written copy of the key map, and it had lost key 3 (not present)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.workspace_helpers import (
    DraftClip,
    annotator_fixture,  # noqa: F401 (a fixture)
    draft_clip_fixture,  # noqa: F401 (a fixture)
    open_next_clip,
)

pytestmark = pytest.mark.browser

# Every key the workspace's key handler answers, as the sheet writes it.
KEYS = [
    "←", "→", "Space", "[", "]", "f", "F", "n", "p", "1", "2", "0", "3", "x", "Shift+X",
    "Delete", "Backspace", "k", "i", "c", "a", "Enter", "t", "Shift+T", "Shift+A", "s", "m",
    "b", "g", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Y", "?",
]  # fmt: skip


def test_the_help_sheet_lists_every_key_the_workspace_answers(
    live_server: str, page: Page, draft_clip: DraftClip, annotator: str
) -> None:
    open_next_clip(page, live_server, annotator, draft_clip.clip_id)
    page.keyboard.press("?")
    sheet = page.locator("#shortcuts")
    expect(sheet).to_be_visible()
    listed = set(sheet.locator("kbd").all_inner_texts())
    assert [key for key in KEYS if key not in listed] == []
    bound = page.evaluate("""async () => {
        const { SHORTCUTS } = await import("/static/js/editor/shortcuts.js");
        return SHORTCUTS.flatMap((row) => row.keys || []).map(([key, , shown]) => shown ?? key);
    }""")  # fmt: skip
    assert sorted(bound) == sorted(KEYS)
    expect(sheet.get_by_role("row").filter(has=page.locator("kbd", has_text="3"))).to_contain_text(
        "not present"
    )
