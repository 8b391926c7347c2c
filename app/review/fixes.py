"""Fix and accept: a reviewer corrects a small thing and approves the item in one step.

As in Label Studio's review, a reviewer who finds a typo in a caption or a point off by a few
pixels need not send the whole clip back: they correct it and accept. The correction is their
own revision (source ``review``, author the reviewer), shown in the item's history and to the
annotator; the annotator's submitted version stays what agreement scores (see
app.agreement.versions). Captions and keypoint tracks can be fixed; anything else is rejected
with a comment as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.keypoint_edits import review_fix_frame
from app.annotations.models import Caption, KeypointFrame, Revision, Source, Track
from app.annotations.node_edits import review_fix_caption
from app.annotations.tree import Node
from app.auth.models import User
from app.core.errors import Invalid
from app.review.workflow import approve, node_in_review

FIXABLE = ("caption", "track")


@dataclass(frozen=True)
class FrameFix:
    """One frame's points as the reviewer left them, and the frame version they started from."""

    frame: Annotated[int, Field(ge=0)]
    points: Annotated[list[list[float]], Field(description="[x, y, visibility] per point")]
    version: Annotated[int, Field(ge=1, description="The frame's version the reviewer saw")]


def fix_and_accept(
    session: Session,
    user: User,
    node_type: str,
    node_id: int,
    version: int,
    *,
    text: str | None = None,
    frames: Sequence[FrameFix] = (),
) -> Node:
    """Write the reviewer's correction of a submitted caption or track, then approve it."""
    node, _ = node_in_review(session, user, node_type, node_id, version, doing="fixed and accepted")
    if isinstance(node, Caption):
        if text is None or text == node.text:
            raise Invalid("Nothing was changed: correct the caption, or approve it as it is.")
        if not text.strip():
            raise Invalid("A fixed caption cannot be empty; reject it with a comment instead.")
        review_fix_caption(session, user, node, text)
    elif isinstance(node, Track):
        if not frames:
            raise Invalid("Nothing was changed: move a point first, or approve the track as it is.")
        written: dict[int, int] = {}  # frame -> version, of frames this fix already wrote
        for fix in frames:  # a fix applies to its held drawing, which may hold a later fix's frame
            version_seen = written.get(fix.frame, fix.version)
            for row in review_fix_frame(
                session, user, node.id, fix.frame, fix.points, version_seen
            ):
                written[row.frame_index] = row.version
    else:
        raise Invalid(
            "Fix and accept corrects captions and keypoints; reject this item with a comment."
        )
    session.flush()
    return approve(session, user, node_type, node_id, node.version)


def review_fixes(session: Session, annotation_id: int) -> list[dict[str, Any]]:
    """Every correction reviewers made to this annotation, on the review tree's nodes."""
    rows = session.execute(
        select(Revision, User.username, KeypointFrame.track_id, KeypointFrame.frame_index)
        .outerjoin(User, User.id == Revision.user_id)
        .outerjoin(
            KeypointFrame,
            (Revision.node_type == "keypoint_frame") & (KeypointFrame.id == Revision.node_id),
        )
        .where(Revision.annotation_id == annotation_id, Revision.source == Source.review)
        .order_by(Revision.id)
    )
    return [
        {
            "node_type": "track" if rev.node_type == "keypoint_frame" else rev.node_type,
            "node_id": track_id if rev.node_type == "keypoint_frame" else rev.node_id,
            "frame": frame_index,
            "user": username,
            "created_at": rev.created_at.isoformat(),
        }
        for rev, username, track_id, frame_index in rows
    ]
