"""The whole life of a dataset, through the UI in Chromium, as a new team lives it.

An admin creates the project and the accounts, uploads a clip drawn by the sample generator
and waits for the pipeline, builds a batch and assigns it. The annotator corrects the model's
pose with mouse drags and the keyboard and submits; the reviewer rejects the track with a
comment pinned to a frame; the annotator fixes it and resubmits; the reviewer approves every
level. The admin opens the agreement page, builds an export and downloads it, and pycocotools
reads the COCO-WholeBody file, where the moved points are where the annotator put them.

Runs on both stacks (``CELLABEL_TEST_STACK``): PostgreSQL + Redis + a Celery worker, and the
embedded default `cellabel demo` runs. Every page is checked for HTTP errors, console errors and
accessibility violations (``page_checks`` of the browser suite).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from pycocotools.coco import COCO
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind, Character, Shot, Track
from app.auth.models import Role, User
from app.samples.generator import make_clip
from tests.browser.conftest import PageChecks, image_to_client, sign_in
from tests.browser.workspace_helpers import drag, go, shown_point
from tests.conftest import EMBEDDED
from tests.factories import PASSWORD, create_user

pytestmark = [pytest.mark.browser, pytest.mark.worker]

# Body points (in `keypoints` of the COCO-WholeBody export) away from the dense face points:
# wrists, elbows, knees, ankles, shoulders.
LIMB_POINTS = [9, 10, 7, 8, 13, 14, 15, 16, 5, 6]
VISIBLE = 2
PIPELINE_TIMEOUT_MS = 300_000


# --- the workspace ----------------------------------------------------------------------------


def _drag_point(page: Page, index: int, dx: float, dy: float) -> tuple[float, float]:
    """Drag point ``index`` by (dx, dy) screen pixels; returns where it lands in the image."""
    x, y, _ = shown_point(page, index)
    drag(page, index, dx, dy)
    css_per_image_px = page.evaluate(
        """() => { const st = window.CelLabelWorkspace.stage, c = st.canvas;
                   return st.scale * c.getBoundingClientRect().width / c.width; }"""
    )
    return x + dx / css_per_image_px, y + dy / css_per_image_px


def _saved(page: Page) -> None:
    expect(page.get_by_test_id("save-status")).to_have_text(re.compile("^saved"))


def _visible_points(page: Page, candidates: list[int]) -> list[int]:
    return [i for i in candidates if shown_point(page, i)[2] == VISIBLE]


# --- review -----------------------------------------------------------------------------------


def _approve(page: Page, kind: str, node_id: int) -> None:
    row = page.get_by_test_id(f"node-{kind}-{node_id}")
    row.locator("button.link").first.click()
    expect(row).to_have_attribute("aria-current", "true")
    page.keyboard.press("y")
    expect(row).to_have_attribute("data-status", "approved")


def _human_annotation(s: Session, clip_id: int) -> Annotation:
    return s.scalars(
        select(Annotation).where(
            Annotation.clip_id == clip_id, Annotation.kind == AnnotationKind.human
        )
    ).one()


def test_a_dataset_from_upload_to_pycocotools(
    live_server: str,
    page: Page,
    new_page: Callable[[], Page],
    unique: str,
    tmp_path: Path,
    celery_worker: object,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    page_checks: PageChecks,
) -> None:
    page_checks.expect_http_errors(422, r"^/batches/preview\b")  # item 10, on its own branch
    base = live_server
    if EMBEDDED:  # the stack really is the one `cellabel demo` runs
        health = httpx.get(f"{base}/healthz").json()
        assert "embedded" in health["redis"], health
    names = {"admin": f"e2e-admin-{unique}", "annotator": f"e2e-ann-{unique}",
             "reviewer": f"e2e-rev-{unique}"}  # fmt: skip
    with committed() as s:
        cleanup["users"].append(create_user(s, Role.admin, username=names["admin"]).id)
    sample = make_clip(tmp_path, f"life-{unique}", seed=1, width=320, fps=12, seconds=2,
                       subsets=["pose"], kinds=["humanoid"], talking=False, timing="twos",
                       shots=1)  # fmt: skip

    # 1. The admin creates the project (pose only) and the two accounts.
    admin = page
    sign_in(admin, base, names["admin"], PASSWORD)
    admin.goto(f"{base}/projects")
    admin.fill("input[name=name]", f"life-{unique}")
    for subset in ("i2v", "face_video", "face_audio"):
        admin.uncheck(f"input[name=subsets][value={subset}]")
    admin.click("text=Create project")
    admin.wait_for_url(re.compile(r"/projects/\d+$"))
    project_id = int(admin.url.rsplit("/", 1)[1])
    cleanup["projects"].append(project_id)
    admin.goto(f"{base}/admin/users")
    for role in ("annotator", "reviewer"):
        admin.fill("input[name=username]", names[role])
        admin.fill("input[name=password]", PASSWORD)
        admin.select_option("form[hx-post='/admin/users'] select[name=role]", role)
        admin.click("text=Create user")
        expect(admin.locator(f"#users tr[data-user='{names[role]}']")).to_be_visible()
    with committed() as s:
        cleanup["users"] += list(
            s.scalars(select(User.id).where(User.username.in_([names["annotator"],
                                                                names["reviewer"]])))
        )  # fmt: skip

    # 2. Upload the clip through the upload page and wait for the pipeline.
    admin.goto(f"{base}/clips?project={project_id}")
    expect(admin.locator("#upload-form input[name=subsets][value=pose]")).to_be_checked()
    admin.set_input_files("[data-testid=upload-input]", str(sample.path))
    admin.click("#upload-form button[type=submit]")
    expect(admin.locator(f"li[data-file='{sample.path.name}']")).to_have_attribute(
        "data-result", "created", timeout=60_000
    )
    row = admin.locator("#clip-table tr[data-clip]", has_text=sample.path.name)
    expect(row).to_have_attribute("data-state", "ready", timeout=PIPELINE_TIMEOUT_MS)
    clip_id = int(row.get_attribute("data-clip") or 0)

    # 3. A batch of the project's clips, assigned to the annotator and the reviewer.
    admin.goto(f"{base}/batches")
    admin.fill("#batch-form input[name=name]", f"life-batch-{unique}")
    admin.select_option("#batch-form select[name=project_id]", label=f"life-{unique}")
    expect(admin.get_by_test_id("match-count")).to_have_text("1")
    admin.click("text=Create batch")
    admin.wait_for_url(re.compile(r"/batches/\d+$"))
    batch_id = int(admin.url.rsplit("/", 1)[1])
    admin.check(f"input[name=annotators][value='{names['annotator']}']")
    admin.check(f"input[name=reviewers][value='{names['reviewer']}']")
    admin.click("#assign-form button[type=submit]")
    expect(admin.locator(f"[data-member='{names['annotator']}']")).to_be_visible()

    # 4. The annotator takes the clip and corrects the pose: keyboard and mouse drags.
    ann = new_page()
    sign_in(ann, base, names["annotator"], PASSWORD)
    ann.goto(f"{base}/queue")
    ann.click("text=Next clip")
    ann.wait_for_url(re.compile(r"/annotate/\d+$"))
    assignment_id = ann.url.rsplit("/", 1)[1]
    expect(ann.locator("#workspace")).to_have_attribute("data-ready", "true")
    ann.locator("#stage").click(position={"x": 2, "y": 2})  # focus the frame, not a field
    for _ in range(3):
        ann.keyboard.press("ArrowRight")
    frame = 3
    expect(ann.locator("#workspace")).to_have_attribute("data-shown", str(frame))
    moved, other, occluded = _visible_points(ann, LIMB_POINTS)[:3]
    put = {moved: _drag_point(ann, moved, 18, -12)}
    _saved(ann)
    put[other] = _drag_point(ann, other, -14, 8)
    _saved(ann)
    x, y, _ = shown_point(ann, occluded)
    ann.mouse.click(*image_to_client(ann, x, y))
    ann.keyboard.press("2")  # occluded: labelled, hidden
    _saved(ann)
    ann.get_by_test_id("submit").click()
    ann.wait_for_url("**/queue")

    with committed() as s:
        annotation = _human_annotation(s, clip_id)
        characters = list(s.scalars(select(Character.id).where(
            Character.annotation_id == annotation.id)))  # fmt: skip
        tracks = list(s.scalars(select(Track.id).where(Track.character_id.in_(characters))))
        shots = list(s.scalars(select(Shot.id).where(Shot.annotation_id == annotation.id)))
        annotation_id = annotation.id
    assert len(tracks) == 1, "the model's pose is one track"

    # 5. The reviewer rejects the track with a comment pinned to the frame.
    rev = new_page()
    sign_in(rev, base, names["reviewer"], PASSWORD)
    rev.goto(f"{base}/review?batch={batch_id}")
    queue_row = rev.locator(f"#review-table tr[data-annotation='{annotation_id}']")
    expect(queue_row).to_contain_text(names["annotator"])
    queue_row.get_by_role("link").click()
    expect(rev.locator("#review-panel")).to_have_attribute("data-ready", "true")
    go(rev, frame)
    track_row = rev.get_by_test_id(f"node-track-{tracks[0]}")
    track_row.locator("button.link").first.click()
    rev.keyboard.press("x")
    expect(rev.get_by_test_id("reject-frame")).to_have_text(str(frame))
    reasons = rev.locator("[data-testid=reject-reason] option:not([value=''])")
    rev.select_option("[data-testid=reject-reason]", reasons.first.get_attribute("value"))
    rev.fill("[data-testid=reject-body]", "The raised point should sit further right.")
    rev.get_by_test_id("reject-submit").click()
    expect(track_row).to_have_attribute("data-status", "rejected")

    # 6. The annotator finds it, follows the pin to the frame, fixes and resubmits.
    ann.goto(f"{base}/queue")
    expect(ann.get_by_test_id("rejected-waiting")).to_contain_text("1 item sent back")
    ann.locator(f"#queue tr[data-assignment='{assignment_id}'] a").first.click()
    expect(ann.locator("#review-panel")).to_have_attribute("data-ready", "true")
    expect(ann.get_by_test_id("review-notice")).to_contain_text("sent this clip back")
    ann.get_by_test_id("goto-pin").click()
    expect(ann.locator("#workspace")).to_have_attribute("data-shown", str(frame))
    put[moved] = _drag_point(ann, moved, 10, 0)
    _saved(ann)
    ann.get_by_test_id("submit").click()
    ann.wait_for_url("**/queue")

    # 7. The reviewer approves every level, children first.
    rev.reload()
    expect(rev.locator("#review-panel")).to_have_attribute("data-ready", "true")
    for shot in shots:
        _approve(rev, "shot", shot)
    _approve(rev, "track", tracks[0])
    for character in characters:
        _approve(rev, "character", character)
    for caption in rev.locator("[data-testid^=node-caption-] button.link").all():
        caption.click()  # the reviewer looks at each caption before approving them together
    annotation_row = rev.get_by_test_id(f"node-annotation-{annotation_id}")
    annotation_row.get_by_test_id("approve-children").click()
    expect(rev.locator("[data-testid^=node-caption-][data-status=submitted]")).to_have_count(0)
    _approve(rev, "annotation", annotation_id)
    expect(rev.get_by_test_id("review-notice")).to_contain_text("This clip is approved")

    # 8. The admin opens the agreement page, builds an export and downloads it.
    response = admin.goto(f"{base}/agreement?project_id={project_id}")
    assert response is not None and response.ok
    admin.goto(f"{base}/exports")
    admin.fill("#export-form input[name=name]", f"life-{unique}")
    admin.select_option("#export-form select[name=project_id]", label=f"life-{unique}")
    admin.click("text=Build snapshot")
    admin.wait_for_url(re.compile(r"/exports/\d+$"))
    expect(admin.get_by_test_id("export-state")).to_have_text("done", timeout=120_000)
    expect(admin.locator("#export-progress")).to_contain_text(re.compile(r"1 clip,\s+[\d.]+ kB"))
    with admin.expect_download() as download:
        admin.click("text=Download zip")
    archive = tmp_path / "export.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extract("coco_wholebody.json", tmp_path)

    # 9. pycocotools reads it; the moved point is where the annotator put it, the occluded one
    #    is labelled hidden.
    coco = COCO(str(tmp_path / "coco_wholebody.json"))
    [image] = [i for i in coco.dataset["images"]
               if i["clip_id"] == clip_id and i["frame_index"] == frame]  # fmt: skip
    [exported] = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    keypoints = np.array(exported["keypoints"], dtype=float).reshape(-1, 3)
    for index, (x, y) in put.items():
        assert np.allclose(keypoints[index, :2], (x, y), atol=1.0), (keypoints[index], x, y)
        assert keypoints[index, 2] == VISIBLE
    assert keypoints[occluded, 2] == 1
