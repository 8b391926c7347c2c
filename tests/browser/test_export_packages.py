"""Every video of the four training packages plays in Debian's Chromium: opened as a file,
Chromium shows it in its own <video> player, which must load it at the written size and
duration and advance when played."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy.orm import Session

from tests.export.package_clips import packages_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# The player's state once it can show a frame, and whether time moves after play().
PLAY_JS = """async () => {
  const v = document.querySelector('video');
  if (v.readyState < 2) {
    await new Promise((ok, bad) => {
      v.onloadeddata = ok;
      v.onerror = () => bad(v.error.message);
    });
  }
  const loaded = {ready: v.readyState, width: v.videoWidth, height: v.videoHeight,
                  duration: v.duration};
  v.muted = true;
  v.currentTime = 0;
  await v.play();
  const start = v.currentTime;
  await new Promise(ok => setTimeout(ok, 400));
  return {...loaded, advanced: v.currentTime - start};
}"""
VIDEOS = {"i2v": ("video",), "pose": ("video", "pose_video"), "face_video": ("face_video",),
          "face_audio": ("face_video",)}  # fmt: skip


def test_every_package_video_plays_in_chromium(
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    tmp_path: Path,
    browser: Browser,
) -> None:
    with committed() as session:
        written = packages_snapshot(session, tmp_path)
    cleanup["projects"].append(written.project_id)
    snapshot = written.folder
    page = browser.new_page()
    checked = 0
    try:
        for subset, columns in VIDEOS.items():
            folder = snapshot / "packages" / subset
            for line in (folder / "manifest.jsonl").read_text().splitlines():
                row = json.loads(line)
                size = (256, 256) if subset.startswith("face") else (320, 240)
                for column in columns:
                    page.goto((folder / row[column]).as_uri())
                    state = page.evaluate(PLAY_JS)
                    assert state["ready"] >= 2, (row[column], state)
                    assert (state["width"], state["height"]) == size
                    assert abs(state["duration"] - row["duration_s"]) < 1 / row["fps"]
                    assert state["advanced"] > 0.1, (row[column], state)
                    checked += 1
    finally:
        page.close()
    assert checked >= 10
