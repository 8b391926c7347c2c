"""In Chromium, with every byte of media in the SeaweedFS bucket (``STORAGE_URL=s3://...``): a
clip's frames show in the viewer and answer 304 when repeated, its preview video plays from
the store (redirected to a presigned URL the page's CSP allows), and an annotator without the
clip still gets 404."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.batches import claims
from app.batches.models import Batch, BatchClip
from app.clips import service as clips
from app.core.config import get_settings
from app.core.storage import get_storage
from app.pipeline import intake
from app.pipeline.runner import run_queued_inline
from app.samples.generator import make_clip
from tests.browser.conftest import PageChecks, sign_in
from tests.browser.test_export_packages import PLAY_JS
from tests.factories import PASSWORD, create_project, create_user
from tests.object_store import SeaweedServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# The width of frame 3 as the page's own <img> decodes it.
FRAME_WIDTH_JS = """async () => {
  const img = new Image();
  img.src = `/media/clips/${document.getElementById('viewer').dataset.clip}/frames/3.jpg`;
  await img.decode();
  return img.naturalWidth;
}"""


def test_a_clip_with_its_media_in_the_bucket_opens_and_plays(
    use_object_store: SeaweedServer,
    new_page: Callable[[], Page],
    page_checks: PageChecks,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
    live_server: str,
    tmp_path: Path,
    unique: str,
) -> None:
    sample = make_clip(
        tmp_path, "bucket", seed=5, width=320, fps=12, seconds=1.5,
        subsets=["i2v"], kinds=["object"], talking=False, timing="twos", shots=1,
    )  # fmt: skip
    with committed() as s:
        project = create_project(s, name=f"bucket-{unique}", subsets=None)
        cleanup["projects"].append(project.id)
        clip_id = intake.import_file(s, project, sample.path, clips.ClipSpec()).clip_id
        assert clip_id is not None
        admin = create_user(s, Role.admin, username=f"bucket-admin-{unique}")
        member = create_user(s, Role.annotator, username=f"bucket-member-{unique}")
        stranger = create_user(s, Role.annotator, username=f"bucket-stranger-{unique}")
        cleanup["users"] += [admin.id, member.id, stranger.id]
    run_queued_inline([clip_id])  # probe, frames and the cheap steps, in this process
    with committed() as s:
        clip = clips.get_clip(s, clip_id)
        assert clip.state.value == "ready", clip.error
        batch = Batch(project_id=clip.project_id, name=f"bucket-{unique}")
        s.add(batch)
        s.flush()
        s.add(BatchClip(batch_id=batch.id, clip_id=clip_id))
        s.flush()
        claims.assign_clips(s, batch.id, s.merge(member), 1)
    clip_media = f"clips/{project.id}/{clip_id}"
    stored = {info.key for info in get_storage().iter_objects(clip_media)}
    assert {f"{clip_media}/frames/index.json", f"{clip_media}/preview.mp4"} <= stored
    assert not (get_settings().effective_media_root / clip_media).exists()

    page = new_page()
    sign_in(page, live_server, f"bucket-member-{unique}", PASSWORD)
    page.goto(f"{live_server}/clips/{clip_id}/view")
    expect(page.get_by_test_id("frame-status")).to_have_text("frame 0")
    assert page.evaluate(FRAME_WIDTH_JS) == 320
    frame = page.request.get(f"{live_server}/media/clips/{clip_id}/frames/3.jpg")
    assert frame.status == 200 and frame.headers["content-type"] == "image/jpeg"
    again = page.request.get(
        f"{live_server}/media/clips/{clip_id}/frames/3.jpg",
        headers={"If-None-Match": frame.headers["etag"]},
    )
    assert again.status == 304 and again.headers["etag"] == frame.headers["etag"]

    staff = new_page()
    sign_in(staff, live_server, f"bucket-admin-{unique}", PASSWORD)
    with staff.expect_response(re.compile(r"/preview\.mp4")) as redirected:
        staff.goto(f"{live_server}/clips/{clip_id}")
    assert redirected.value.status == 307
    played = staff.evaluate(PLAY_JS)
    assert played["ready"] >= 2 and played["width"] == 320 and played["advanced"] > 0.1
    assert redirected.value.headers["location"].startswith(use_object_store.endpoint)

    page_checks.expect_http_errors(404, rf"^/media/clips/{clip_id}/frames/")
    other = new_page()
    sign_in(other, live_server, f"bucket-stranger-{unique}", PASSWORD)
    refused = other.request.get(f"{live_server}/media/clips/{clip_id}/frames/3.jpg")
    assert refused.status == 404
    refused_video = other.request.get(
        f"{live_server}/media/clips/{clip_id}/preview.mp4", max_redirects=0
    )
    assert refused_video.status == 404
