"""In Chromium: an annotator submits, a reviewer rejects the keypoint track with a comment pinned
to frame 12 (a left-hand point and a region dragged on the frame), the annotator finds it in
their queue, fixes it, restores an older revision from the history panel, resubmits, the
reviewer approves level by level, and an admin reopens the track."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind, Caption, Character, Shot, Track
from app.auth.models import Role
from app.batches.models import Assignment, AssignmentState
from app.review.models import ReviewComment
from tests.browser.conftest import PageChecks, image_to_client, sign_in
from tests.factories import (
    PASSWORD,
    assign_clip,
    create_clip,
    create_model_draft,
    create_project,
    create_user,
)

pytestmark = pytest.mark.browser

LEFT_HAND_POINT = 100  # COCO-WholeBody: 91-111 are the left hand
TIMES = "\N{MULTIPLICATION SIGN}"  # as the panel writes a region's size


def _approve_with_key(page: Page, kind: str, node_id: int) -> None:
    row = page.get_by_test_id(f"node-{kind}-{node_id}")
    row.locator("button.link").click()
    expect(row).to_have_attribute("aria-current", "true")
    page.keyboard.press("y")
    expect(page.get_by_test_id(f"node-{kind}-{node_id}")).to_have_attribute(
        "data-status", "approved"
    )


def test_reject_fix_resubmit_approve_with_history(
    live_server: str,
    page: Page,
    new_page: Callable[[], Page],
    page_checks: PageChecks,
    unique: str,
    committed: Callable[[], AbstractContextManager[Session]],
    cleanup: dict[str, list[int]],
) -> None:
    with committed() as s:
        project = create_project(s, name=f"review-{unique}")
        cleanup["projects"].append(project.id)
        clip = create_clip(s, project, subsets=["pose"], frame_count=24, fps=24.0, width=320,
                           height=240, state="ready", filename=f"review-{unique}.mp4")  # fmt: skip
        create_model_draft(s, clip, frames=24)
        annotator = create_user(s, Role.annotator, username=f"ann-{unique}")
        reviewer = create_user(s, Role.reviewer, username=f"rev-{unique}")
        admin = create_user(s, Role.admin, username=f"adm-{unique}")
        cleanup["users"] += [annotator.id, reviewer.id, admin.id]
        assignment = assign_clip(s, clip, annotator, f"batch-{unique}")
        ids = {"assignment": assignment.id, "clip": clip.id}

    # Refusals the test asks for (early submit, early approval, blank reopen reason); the
    # factory clip has no frame images.
    page_checks.expect_http_errors(
        403, r"^/api/(annotations/\d+/submit|review/annotation/\d+/approve)"
    )
    page_checks.expect_http_errors(422, r"^/api/review/track/\d+/reopen")
    page_checks.expect_http_errors(404, r"^/media/clips/\d+/frames/")

    # 1. The annotator opens the clip from the queue and submits it.
    sign_in(page, live_server, annotator.username, PASSWORD)
    page.goto(f"{live_server}/annotate/{ids['assignment']}")
    page.get_by_test_id("start").click()
    expect(page.locator("#review-panel")).to_have_attribute("data-ready", "true")
    page.get_by_test_id("submit").click()
    page.wait_for_url("**/queue")

    with committed() as s:
        annotation = s.scalars(
            select(Annotation).where(Annotation.clip_id == ids["clip"],
                                     Annotation.kind == AnnotationKind.human)
        ).one()  # fmt: skip
        character = s.scalars(
            select(Character).where(Character.annotation_id == annotation.id)
        ).one()
        track = s.scalars(select(Track).where(Track.character_id == character.id)).one()
        shot = s.scalars(select(Shot).where(Shot.annotation_id == annotation.id)).one()
        captions = list(s.scalars(select(Caption.id).where(Caption.annotation_id == annotation.id)))
        ids |= {"annotation": annotation.id, "character": character.id, "track": track.id,
                "shot": shot.id}  # fmt: skip

    # 2. The reviewer finds it in the review queue and rejects the track, pinned to frame 12.
    rev = new_page()
    sign_in(rev, live_server, reviewer.username, PASSWORD)
    rev.goto(f"{live_server}/review")
    rev.select_option("select[name=annotator]", label=annotator.username)
    queue_row = rev.locator(f"#review-table tr[data-annotation='{ids['annotation']}']")
    expect(queue_row).to_be_visible()
    expect(rev.locator("#review-table tbody tr")).to_have_count(1)
    queue_row.get_by_role("link").click()
    expect(rev.locator("#review-panel")).to_have_attribute("data-ready", "true")
    rev.fill("#ws-frame", "12")
    rev.press("#ws-frame", "Tab")
    expect(rev.get_by_test_id("frame-info")).to_contain_text("frame 12")
    track_row = rev.get_by_test_id(f"node-track-{ids['track']}")
    track_row.locator("button.link").click()
    rev.locator("#stage").scroll_into_view_if_needed()
    rev.mouse.move(*image_to_client(rev, 10, 120))  # a box clear of the skeleton: the region
    rev.mouse.down()
    rev.mouse.move(*image_to_client(rev, 50, 160))
    rev.mouse.move(*image_to_client(rev, 90, 200))
    rev.mouse.up()
    rev.keyboard.press("x")
    expect(rev.get_by_test_id("reject-frame")).to_have_text("12")
    expect(rev.get_by_test_id("reject-pin-region")).to_be_checked()
    expect(rev.get_by_test_id("reject-region")).to_have_text(f"80{TIMES}80 at 10, 120")
    rev.select_option("[data-testid=reject-reason]", "wrong_keypoint")
    rev.fill("[data-testid=reject-body]", "The left hand's middle finger is on the sleeve.")
    rev.fill("[data-testid=reject-point]", str(LEFT_HAND_POINT))
    rev.get_by_test_id("reject-submit").click()
    expect(track_row).to_have_attribute("data-status", "rejected")
    expect(rev.get_by_test_id(f"node-annotation-{ids['annotation']}")).to_have_attribute(
        "data-status", "rejected"
    )
    expect(rev.get_by_test_id("review-comments")).to_contain_text(
        f"frame 12 · point {LEFT_HAND_POINT} · region 80{TIMES}80"
    )
    # The reviewer is told where the clip went, not what to do to resubmit it.
    expect(rev.get_by_test_id("review-notice")).to_contain_text(
        "This clip went back to its annotator: 1 rejection(s) are open."
    )
    expect(rev.get_by_test_id("annotation-status")).to_have_text("rejected")  # the title too

    # 3. The annotator sees it in the queue and in the workspace.
    page.goto(f"{live_server}/queue")
    expect(page.get_by_test_id("rejected-waiting")).to_contain_text("1 item sent back")
    page.locator(f"#queue tr[data-assignment='{ids['assignment']}'] a").first.click()
    expect(page.locator("#review-panel")).to_have_attribute("data-ready", "true")
    notice = page.get_by_test_id("review-notice")
    expect(notice).to_contain_text("sent this clip back")
    expect(page.get_by_test_id("needs-answer")).to_be_visible()
    page.get_by_test_id("submit").click()  # not yet: the rejection has no change or reply
    expect(page.get_by_test_id("save-status")).to_contain_text("Fix or answer each rejection")

    # 4. The pin takes them to frame 12 with the point selected; two edits, both autosaved.
    page.get_by_test_id("goto-pin").click()
    expect(page.get_by_test_id("frame-info")).to_contain_text("frame 12")
    page.wait_for_function(f"CelLabelWorkspace.stage.selected.has({LEFT_HAND_POINT})")
    for key in ("2", "0"):  # occluded, then not present: each autosaved as its own revision
        with page.expect_response(lambda r: "/frames/12" in r.url and r.request.method == "PUT"):
            page.locator("body").press(key)
    visibility = f"CelLabelWorkspace.model.frame({ids['track']}, 12).points[{LEFT_HAND_POINT}][2]"
    assert page.evaluate(visibility) == 0

    # 5. History of the track: both edits; restore the first (occluded) one.
    page.get_by_test_id(f"node-track-{ids['track']}").get_by_test_id("history").click()
    rows = page.get_by_test_id("history-rows")
    expect(rows.get_by_test_id("revision-update")).to_have_count(2)
    expect(rows.get_by_test_id("revision-status")).to_have_count(2)  # submitted, rejected
    first, second = rows.get_by_test_id("revision-update").all()
    first.locator("input[name=history-a]").check()
    second.locator("input[name=history-b]").check()
    expect(page.get_by_test_id("history-diff")).to_contain_text(f"point {LEFT_HAND_POINT}: ")
    first.get_by_test_id("restore").click()
    expect(page.get_by_test_id("review-status")).to_contain_text("restored revision")
    expect(page.locator("#review-panel")).to_have_attribute("data-ready", "true")
    assert page.evaluate(visibility) == 1
    page.get_by_test_id(f"node-track-{ids['track']}").get_by_test_id("history").click()
    expect(page.get_by_test_id("history-rows").get_by_test_id("revision-restore")).to_have_count(1)
    page.keyboard.press("Escape")
    page.get_by_test_id("submit").click()
    page.wait_for_url("**/queue")

    # 6. The reviewer approves each level; approving the clip first is refused.
    rev.reload()
    expect(rev.locator("#review-panel")).to_have_attribute("data-ready", "true")
    annotation_row = rev.get_by_test_id(f"node-annotation-{ids['annotation']}")
    expect(annotation_row).to_have_attribute("data-status", "submitted")
    annotation_row.get_by_test_id("approve").click()
    expect(rev.get_by_test_id("review-status")).to_contain_text("Parent gating")
    _approve_with_key(rev, "shot", ids["shot"])
    _approve_with_key(rev, "track", ids["track"])
    _approve_with_key(rev, "character", ids["character"])
    for caption_id in captions:  # shown, then approved together
        rev.get_by_test_id(f"node-caption-{caption_id}").locator("button.link").click()
    annotation_row.get_by_test_id("approve-children").click()
    for caption_id in captions:
        expect(rev.get_by_test_id(f"node-caption-{caption_id}")).to_have_attribute(
            "data-status", "approved"
        )
    _approve_with_key(rev, "annotation", ids["annotation"])
    expect(rev.get_by_test_id("review-notice")).to_contain_text("This clip is approved")

    # The clip-level history shows every step.
    rev.get_by_test_id(f"node-annotation-{ids['annotation']}").get_by_test_id("history").click()
    steps = rev.get_by_test_id("history-rows").get_by_test_id("revision-status")
    expect(steps).to_have_count(4)
    expect(steps.nth(3)).to_contain_text("submitted → approved")

    with committed() as s:
        final = s.get_one(Annotation, ids["annotation"])
        assert final.status.value == "approved" and final.is_primary
        assert s.get_one(Assignment, ids["assignment"]).state == AssignmentState.approved
        [comment] = s.scalars(
            select(ReviewComment).where(ReviewComment.annotation_id == ids["annotation"])
        ).all()
        assert (comment.frame_index, comment.point_index, comment.resolved) == (
            12, LEFT_HAND_POINT, True
        )  # fmt: skip
        region = comment.region or {}
        assert [round(region[k]) for k in ("x", "y", "w", "h")] == [10, 120, 80, 80]

    # 7. An admin reopens the approved track: the reason is asked in a dialog, a blank one is
    #    refused there (what was typed stays), and the track and its ancestors become drafts.
    adm = new_page()
    sign_in(adm, live_server, admin.username, PASSWORD)
    adm.goto(f"{live_server}/annotations/{ids['annotation']}")
    expect(adm.locator("#review-panel")).to_have_attribute("data-ready", "true")
    # A note that sends nothing back, pinned to the frame shown.
    adm.get_by_test_id(f"node-shot-{ids['shot']}").get_by_test_id("comment").click()
    expect(adm.get_by_test_id("comment-frame")).to_have_text("0")
    adm.fill("[data-testid=comment-body]", "Nice cut timing here.")
    adm.get_by_test_id("comment-submit").click()
    expect(adm.get_by_test_id("comment-dialog")).to_be_hidden()
    expect(adm.get_by_test_id("review-comments")).to_contain_text("Nice cut timing here.")
    adm.get_by_test_id(f"node-track-{ids['track']}").get_by_test_id("reopen").click()
    dialog = adm.get_by_test_id("reopen-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Reopen")
    adm.fill("[data-testid=reopen-reason]", "   ")
    adm.get_by_test_id("reopen-submit").click()
    expect(dialog.locator(".error-box")).to_have_text("Say why you reopen it.")
    expect(dialog).to_be_visible()
    adm.fill("[data-testid=reopen-reason]", "The right wrist drifts in frames 3-5.")
    adm.get_by_test_id("reopen-submit").click()
    expect(adm.locator("#review-panel")).to_have_attribute("data-ready", "true")
    for kind, node_id in (("track", ids["track"]), ("character", ids["character"]),
                          ("annotation", ids["annotation"])):  # fmt: skip
        row = adm.get_by_test_id(f"node-{kind}-{node_id}")
        expect(row).to_have_attribute("data-status", "draft")
    expect(adm.get_by_test_id(f"node-shot-{ids['shot']}")).to_have_attribute(
        "data-status", "approved"
    )
    with committed() as s:
        assert s.get_one(Assignment, ids["assignment"]).state == AssignmentState.in_progress
        assert s.get_one(Annotation, ids["annotation"]).approved_at is None
        note = s.scalars(
            select(ReviewComment).where(
                ReviewComment.annotation_id == ids["annotation"], ReviewComment.reason.is_(None)
            )
        ).one()
        assert (note.node_type, note.node_id, note.frame_index) == ("shot", ids["shot"], 0)
