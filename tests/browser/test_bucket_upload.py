"""In Chromium, with media in a real SeaweedFS bucket: an admin uploads a 52 MB video straight
to the bucket, the tab is closed after 3 of its 7 parts, and choosing the same file again in a
new tab sends only the 4 missing parts; the clip appears, its object holding exactly the file.

The file is a real (tiny) H.264 MP4 padded to size with an MP4 ``free`` box of random bytes,
which players and the probe step skip, so the pipeline can read it."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, expect
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips.models import Clip
from app.core.config import get_settings
from app.pipeline.uploads import PART_SIZE
from tests.browser.conftest import PageChecks, sign_in
from tests.factories import PASSWORD, create_project, create_user
from tests.media.videos import write_pyav
from tests.object_store import BUCKET, SeaweedServer

pytestmark = pytest.mark.browser

Committed = Callable[[], AbstractContextManager[Session]]
SIZE = 6 * PART_SIZE + 2 * 1024**2  # 52 MiB: 7 parts of 8 MiB
SENT_BEFORE_CLOSING = 3


def padded_video(path: Path, size: int) -> Path:
    """A valid MP4 of exactly ``size`` bytes: a short clip, then a ``free`` box of noise."""
    write_pyav(path, frames=30)
    pad = size - path.stat().st_size
    with path.open("ab") as out:
        out.write(struct.pack(">I4s", pad, b"free"))
        out.write(os.urandom(pad - 8))
    return path


def _admin_and_project(
    committed: Committed, cleanup: dict[str, list[int]], unique: str
) -> tuple[str, int]:
    with committed() as s:
        project = create_project(s, name=f"bucket-upload-{unique}")
        admin = create_user(s, Role.admin, username=f"bucket-admin-{unique}")
        cleanup["projects"].append(project.id)
        cleanup["users"].append(admin.id)
        return admin.username, project.id


def _part_puts(page: Page, store: str, hold_after: int | None = None) -> list[str]:
    """Route the page's PUTs to the store: counted, and those past ``hold_after`` never
    answered (a tab closed mid-upload). Returns the list the PUTs are recorded in."""
    puts: list[str] = []

    def handle(route: Route, request: Request) -> None:
        if request.method != "PUT":
            route.continue_()
            return
        puts.append(request.url)
        if hold_after is None or len(puts) <= hold_after:
            route.continue_()

    page.route(f"{store}/**", handle)
    return puts


def test_an_interrupted_upload_resumes_with_only_the_missing_parts(
    live_server: str,
    page: Page,
    page_checks: PageChecks,
    unique: str,
    tmp_path: Path,
    committed: Committed,
    cleanup: dict[str, list[int]],
    use_object_store: SeaweedServer,
) -> None:
    admin, project_id = _admin_and_project(committed, cleanup, unique)
    video = padded_video(tmp_path / "long-take.mp4", SIZE)
    store = use_object_store.endpoint

    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    first_puts = _part_puts(page, store, hold_after=SENT_BEFORE_CLOSING)
    finished: list[str] = []
    page.on("requestfinished", lambda r: finished.append(r.url) if r.method == "PUT" else None)
    page.set_input_files("[data-testid=upload-input]", str(video))
    page.click("#upload-form button[type=submit]")
    while len(finished) < SENT_BEFORE_CLOSING:
        page.wait_for_timeout(100)
    assert len(first_puts) > SENT_BEFORE_CLOSING  # the rest were on their way
    page.close()  # the tab is closed mid-upload

    again = page_checks.watch(page.context.new_page())
    again.goto(f"{live_server}/clips?project={project_id}")
    second_puts = _part_puts(again, store)
    again.set_input_files("[data-testid=upload-input]", str(video))
    again.click("#upload-form button[type=submit]")
    row = again.locator("#upload-list li", has_text="long-take.mp4")
    expect(row.locator(".note")).to_have_text(
        "Resuming upload: 3 of 7 parts already uploaded", timeout=30_000
    )
    expect(row.locator(".status")).to_have_text(
        re.compile(r"uploaded as clip \d+"), timeout=120_000
    )
    assert len(second_puts) == 7 - SENT_BEFORE_CLOSING
    expect(again.locator("#clip-table tr[data-clip]")).to_have_count(1)

    with committed() as s:
        clip = s.query(Clip).filter_by(project_id=project_id).one()
        key = clip.storage_key
    assert key.startswith(f"clips/{project_id}/{clip.id}/source")
    prefix = get_settings().storage_url.split("/", 3)[3]
    body = use_object_store.client().get_object(Bucket=BUCKET, Key=f"{prefix}/{key}")["Body"]
    stored = hashlib.sha256()
    for chunk in iter(lambda: body.read(1024**2), b""):
        stored.update(chunk)
    assert stored.hexdigest() == hashlib.sha256(video.read_bytes()).hexdigest()


def test_a_file_over_the_limit_is_refused_in_the_page(
    live_server: str,
    page: Page,
    page_checks: PageChecks,
    unique: str,
    tmp_path: Path,
    committed: Committed,
    cleanup: dict[str, list[int]],
    use_object_store: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, project_id = _admin_and_project(committed, cleanup, unique)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    get_settings.cache_clear()
    page_checks.expect_http_errors(413, r"^/api/projects/\d+/uploads$")
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 1001)
    sign_in(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server}/clips?project={project_id}")
    page.set_input_files("[data-testid=upload-input]", str(big))
    page.click("#upload-form button[type=submit]")
    row = page.locator("#upload-list li", has_text="big.mp4")
    expect(row.locator(".status")).to_have_text(
        "big.mp4 is 1,001 bytes, larger than the limit of 1,000 bytes."
    )
    expect(row).to_have_attribute("data-result", "error")
    expect(page.locator("#clip-table tr[data-clip]")).to_have_count(0)
