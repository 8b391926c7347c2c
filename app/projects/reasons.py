"""Rejection reasons per kind of review item: what a reviewer can say is wrong with each.

A project stores ``{kind: [reason, ...]}``; a reason is a short code (stored on the comment)
with a label in words for the pages. Reasons fit their item: a caption is never rejected for
a "wrong keypoint". Projects made before reasons had kinds stored one flat list;
:func:`reasons_by_kind` reads either shape (old exports still import).
"""

from __future__ import annotations

from typing import Any

# The review tree's node types, and how a person calls each.
KINDS: dict[str, str] = {
    "annotation": "the clip (tags, quality, timing)",
    "shot": "shot",
    "character": "character",
    "track": "keypoints",
    "caption": "caption",
    "speech_segment": "speech",
}

DEFAULT_REJECTION_REASONS: dict[str, tuple[str, ...]] = {
    "annotation": ("wrong_tag", "wrong_quality", "wrong_timing", "missing_character", "other"),
    "shot": ("wrong_shot_boundary", "missed_cut", "false_cut", "wrong_camera_motion", "other"),
    "character": ("wrong_identity", "merged_characters", "wrong_emotion", "other"),
    "track": ("wrong_keypoint", "missing_point", "left_right_swap", "wrong_visibility",
              "jitter", "other"),
    "caption": ("wording", "caption_inaccurate", "missing_detail", "style_guide", "other"),
    "speech_segment": ("speech_misaligned", "wrong_transcript", "other"),
}  # fmt: skip

UNSPECIFIED = "unspecified"  # old rejections whose reason was the form's untouched default

REASON_LABELS: dict[str, str] = {
    "wrong_tag": "Wrong tag",
    "wrong_quality": "Wrong keep/discard decision",
    "wrong_timing": "Wrong drawing timing",
    "missing_character": "A character is missing",
    "wrong_shot_boundary": "Boundary on the wrong frame",
    "missed_cut": "A cut is missed",
    "false_cut": "Cut where there is none",
    "wrong_camera_motion": "Wrong camera motion",
    "wrong_identity": "Wrong character or kind",
    "merged_characters": "Two characters merged into one",
    "wrong_emotion": "Wrong emotion",
    "wrong_keypoint": "Point in the wrong place",
    "missing_point": "Missing point",
    "left_right_swap": "Left and right swapped",
    "wrong_visibility": "Wrong visibility",
    "jitter": "Points jitter between frames",
    "wording": "Wording or spelling",
    "caption_inaccurate": "Content: says what is not there",
    "missing_detail": "Missing detail",
    "style_guide": "Breaks the style guide",
    "speech_misaligned": "Start or end off",
    "wrong_transcript": "Wrong transcript",
    "other": "Other (see the comment)",
    UNSPECIFIED: "No reason given (before reasons were required)",
}

# Where each reason of the old flat list belongs (an unknown, custom reason fits every kind).
_LEGACY_KIND = {
    "wrong_keypoint": "track", "wrong_visibility": "track", "caption_inaccurate": "caption",
    "wrong_shot_boundary": "shot", "wrong_tag": "annotation", "missing_character": "annotation",
    "wrong_emotion": "character", "speech_misaligned": "speech_segment",
}  # fmt: skip


def default_reasons() -> dict[str, list[str]]:
    return {kind: list(reasons) for kind, reasons in DEFAULT_REJECTION_REASONS.items()}


def reasons_by_kind(stored: Any) -> dict[str, list[str]]:
    """A project's reasons per kind; a legacy flat list becomes the defaults plus its customs."""
    if isinstance(stored, dict):
        return {kind: list(stored.get(kind) or DEFAULT_REJECTION_REASONS[kind]) for kind in KINDS}
    found = default_reasons()
    for reason in stored or []:
        if reason in _LEGACY_KIND or reason == "other":
            continue
        for reasons in found.values():
            if reason not in reasons:
                reasons.insert(len(reasons) - 1, reason)  # before "other"
    return found


def reason_label(code: str | None) -> str:
    """A reason in words (a custom code reads as its words)."""
    if not code:
        return ""
    return REASON_LABELS.get(code) or code.replace("_", " ").replace("-", " ").capitalize()
