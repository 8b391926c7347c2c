"""In Chromium: an admin uploads two clips, watches them through upload and the pipeline,
opens one, steps to frame 37, and the canvas shows exactly frame 37 of the source."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.samples.generator import make_clip
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, create_project, create_user

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def _source_frame(path: Path, n: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, n)
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return bgr


def _canvas_pixels(page: Page) -> np.ndarray:
    data_url = page.evaluate("document.getElementById('frame-canvas').toDataURL('image/png')")
    png = base64.b64decode(data_url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_upload_two_clips_then_view_frame_37_exactly(
    live_server: str, page: Page, unique: str, tmp_path: Path, celery_worker: object,
    committed: Callable[[], AbstractContextManager[Session]], cleanup: dict[str, list[int]],
) -> None:  # fmt: skip
    files = [
        make_clip(tmp_path, f"up{i}", seed=40 + i, width=320, fps=24, seconds=2.5, timing="ones",
                  subsets=["i2v"], kinds=["humanoid"], talking=False, shots=1).path
        for i in range(2)
    ]  # fmt: skip
    with committed() as s:
        project = create_project(s, name=f"upload-{unique}")
        admin = create_user(s, Role.admin, username=f"upload-admin-{unique}")
        cleanup["projects"].append(project.id)
        cleanup["users"].append(admin.id)
        project_id, username = project.id, admin.username

    sign_in(page, live_server, username, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    page.set_input_files("[data-testid=upload-input]", [str(f) for f in files])
    page.click("#upload-form button[type=submit]")
    for f in files:
        expect(page.locator(f"li[data-file='{f.name}']")).to_have_attribute(
            "data-result", "created", timeout=30_000
        )
    rows = page.locator("#clip-table tr[data-clip]")
    expect(rows).to_have_count(2, timeout=30_000)
    for i in range(2):  # the table polls itself until the pipeline is done
        expect(rows.nth(i)).to_have_attribute("data-state", "ready", timeout=240_000)

    page.locator("#clip-table tr[data-clip]", has_text=files[0].name).locator("a").first.click()
    page.click("[data-testid=open-viewer]")
    page.wait_for_url(re.compile(r"/clips/\d+/view"))
    page.fill("[data-testid=frame-input]", "35")
    page.press("[data-testid=frame-input]", "Enter")
    expect(page.locator("#viewer")).to_have_attribute("data-shown", "35")
    page.click("body")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer")).to_have_attribute("data-shown", "37")

    shown = _canvas_pixels(page).astype(np.int16)
    error = {n: float(np.abs(shown - _source_frame(files[0], n)).mean()) for n in (36, 37, 38)}
    assert error[37] < 3.0, error  # JPEG cache tolerance
    assert error[37] < min(error[36], error[38]), error
