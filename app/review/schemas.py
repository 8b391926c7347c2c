"""Request and response bodies of the review API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.annotations.tree import NodeRef
from app.review.comments import Pin
from app.review.fixes import FrameFix

HistoryNodeType = Literal[
    "annotation", "shot", "character", "track", "caption", "speech_segment", "keypoint_frame"
]


class Transition(BaseModel):
    version: int = Field(ge=1, description="The node's version the reviewer saw")


class RejectIn(Transition, Pin):
    reason: str = Field(min_length=1, max_length=40)
    body: str = Field(min_length=1, max_length=5000)


class FixIn(Transition):
    """The reviewer's correction: a caption's new text, or a track's changed frames."""

    text: str | None = Field(default=None, max_length=20_000)
    frames: list[FrameFix] = Field(default_factory=list, max_length=10_000)


class CommentIn(Pin):
    body: str = Field(min_length=1, max_length=5000)


class ReopenIn(Transition):
    reason: str = Field(min_length=1, max_length=2000)


class ReplyIn(BaseModel):
    body: str = Field(min_length=1, max_length=5000)


class ResolveIn(BaseModel):
    resolved: bool


class ApproveChildrenIn(BaseModel):
    shown: list[NodeRef] = Field(description="The children the review panel displayed")


class NodeRead(BaseModel):
    type: str
    id: int
    status: str
    version: int
    awaiting_acceptance: bool = False


class CommentRead(BaseModel):
    id: int
    annotation_id: int
    node_type: str
    node_id: int
    frame_index: int | None
    point_index: int | None
    region: dict[str, float] | None
    parent_id: int | None
    author_id: int
    reason: str | None
    body: str
    resolved: bool
    created_at: datetime

    model_config = {"from_attributes": True}


class FieldChange(BaseModel):
    field: str
    a: object
    b: object


class DiffRead(BaseModel):
    node_type: str
    node_id: int
    a: int
    b: int
    changes: list[FieldChange]
