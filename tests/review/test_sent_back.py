"""The annotator's sent-back list: their rejected assignments with the latest open rejection."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.annotations.opening import open_assignment
from app.auth.models import Role
from app.batches import claims
from app.batches.models import AssignmentState, BatchMember
from app.review.models import ReviewComment
from app.review.sent_back import sent_back
from tests.factories import (
    create_batch,
    create_model_draft,
    create_project,
    create_ready_clips,
    create_user,
)


def test_rejected_work_is_listed_with_the_latest_reason_and_a_link_to_its_frame(
    db: Session,
) -> None:
    project = create_project(db)
    clips = create_ready_clips(db, project, 2, frame_count=10, width=64, height=64)
    for clip in clips:
        create_model_draft(db, clip, frames=10)
    annotator, other = create_user(db, Role.annotator), create_user(db, Role.annotator)
    reviewer = create_user(db, Role.reviewer)
    batch = create_batch(db, project, clips)
    db.add(BatchMember(batch_id=batch.id, user_id=annotator.id, role="annotator"))
    db.flush()
    first, second = claims.next_clip(db, annotator), claims.next_clip(db, annotator)
    assert first is not None and second is not None
    _, annotation = open_assignment(db, annotator, first.id)
    first.state = AssignmentState.rejected
    for frame, reason in ((2, "wrong_keypoint"), (6, "missing_character")):
        db.add(ReviewComment(annotation_id=annotation.id, node_type="track", node_id=1,
                             frame_index=frame, author_id=reviewer.id, reason=reason,
                             body=f"look at frame {frame}"))  # fmt: skip
    reply = ReviewComment(
        annotation_id=annotation.id,
        node_type="track",
        node_id=1,
        frame_index=9,
        author_id=annotator.id,
        body="a reply, no rejection",
    )
    db.add(reply)
    db.flush()

    [item] = sent_back(db, annotator)
    assert item.assignment_id == first.id and item.reviewer == reviewer.username
    assert (item.reason, item.frame, item.rejections) == ("missing_character", 6, 2)
    assert item.url == f"/annotate/{first.id}?frame=6" and item.reason_text == "missing character"
    assert sent_back(db, other) == []
