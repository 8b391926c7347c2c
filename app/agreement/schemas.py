"""Pydantic shapes of the agreement API and the adjudication form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LEVEL_PICKS = ("shots", "captions", "tags", "quality", "speech")
CharacterTake = int | Literal["mean", "drop"]


class ScoreRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    clip_id: int
    batch_id: int | None
    level: str
    metric: str
    against: str
    annotation_a_id: int | None
    annotation_b_id: int | None
    annotator_a_id: int | None
    annotator_b_id: int | None
    value: float | None
    detail: dict[str, Any]
    annotation_versions: dict[str, Any]
    computed_at: datetime


class RecomputeRead(BaseModel):
    clip_id: int
    queued: bool


class AdjudicationChoice(BaseModel):
    """Which version each part of the adjudicated annotation comes from (annotation ids).

    A level left out comes from the first version. ``tags`` may be ``"majority"`` (2-of-3 per
    tag group). ``characters`` maps a character group (as the adjudication page numbers them)
    to a version, ``"mean"`` (average every version's points, frame by frame) or ``"drop"``.
    Shot captions follow ``captions`` for shots whose start frame that version shares, else
    they come with the shots.
    """

    shots: int | None = None
    captions: int | None = None
    tags: int | Literal["majority"] | None = None
    quality: int | None = None
    speech: int | None = None
    characters: dict[int, CharacterTake] = Field(default_factory=dict)
    comment: str = Field("", max_length=2000)

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> AdjudicationChoice:
        """Form fields ``shots=12``, ``tags=majority``, ``character-0=mean``, ``comment=...``."""

        def value(raw: Any) -> int | str | None:
            text = str(raw).strip()
            if not text:
                return None
            return int(text) if text.isdigit() else text

        data: dict[str, Any] = {k: value(form[k]) for k in LEVEL_PICKS if k in form}
        data["characters"] = {
            int(k.split("-", 1)[1]): value(v)
            for k, v in form.items()
            if k.startswith("character-") and k.split("-", 1)[1].isdigit() and value(v) is not None
        }
        data["comment"] = str(form.get("comment", ""))
        return cls.model_validate(data)


class AdjudicationRead(BaseModel):
    annotation_id: int
    clip_id: int
    status: str
    is_primary: bool
