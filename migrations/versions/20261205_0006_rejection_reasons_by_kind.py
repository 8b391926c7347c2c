"""rejection reasons by kind of item: a project's flat list becomes {kind: [reason, ...]}

Old rejections of anything but a keypoint track that say ``wrong_keypoint`` got it from the
reject form's untouched first option (there was no choice to make), so they become
``unspecified`` ("no reason given") rather than keep a reason that is not true.

Revision ID: 0006_reasons_by_kind
Revises: 0005_export_heartbeat
Create Date: 2026-12-05 19:50:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006_reasons_by_kind"
down_revision: str | None = "0005_export_heartbeat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The defaults as of this revision (app.projects.reasons may change later; this must not).
DEFAULTS: dict[str, list[str]] = {
    "annotation": ["wrong_tag", "wrong_quality", "wrong_timing", "missing_character", "other"],
    "shot": ["wrong_shot_boundary", "missed_cut", "false_cut", "wrong_camera_motion", "other"],
    "character": ["wrong_identity", "merged_characters", "wrong_emotion", "other"],
    "track": ["wrong_keypoint", "missing_point", "left_right_swap", "wrong_visibility",
              "jitter", "other"],
    "caption": ["wording", "caption_inaccurate", "missing_detail", "style_guide", "other"],
    "speech_segment": ["speech_misaligned", "wrong_transcript", "other"],
}  # fmt: skip
OLD_DEFAULTS = ("wrong_keypoint", "missing_character", "wrong_visibility", "caption_inaccurate",
                "wrong_shot_boundary", "wrong_tag", "wrong_emotion", "speech_misaligned",
                "other")  # fmt: skip

project = sa.table("project", sa.column("id", sa.Integer), sa.column("rejection_reasons", sa.JSON))
comment = sa.table(
    "review_comment",
    sa.column("reason", sa.String),
    sa.column("node_type", sa.String),
    sa.column("parent_id", sa.Integer),
)


def _by_kind(flat: list[str]) -> dict[str, list[str]]:
    """The new defaults, plus each custom reason of the old list for every kind."""
    found = {kind: list(reasons) for kind, reasons in DEFAULTS.items()}
    for reason in flat:
        if reason in OLD_DEFAULTS:
            continue
        for reasons in found.values():
            if reason not in reasons:
                reasons.insert(len(reasons) - 1, reason)
    return found


def _flat(by_kind: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r for reasons in by_kind.values() for r in reasons))


def _convert(change: Any, wanted: type) -> None:
    bind = op.get_bind()
    for row_id, stored in bind.execute(sa.select(project.c.id, project.c.rejection_reasons)):
        if not isinstance(stored, wanted):
            bind.execute(
                project.update()
                .where(project.c.id == row_id)
                .values(rejection_reasons=change(stored or ([] if wanted is dict else {})))
            )


def upgrade() -> None:
    _convert(_by_kind, dict)
    op.execute(
        comment.update()
        .where(
            comment.c.reason == "wrong_keypoint",
            comment.c.node_type != "track",
            comment.c.parent_id.is_(None),
        )
        .values(reason="unspecified")
    )


def downgrade() -> None:
    _convert(_flat, list)
    op.execute(
        comment.update().where(comment.c.reason == "unspecified").values(reason="wrong_keypoint")
    )
