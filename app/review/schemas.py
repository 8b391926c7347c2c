"""Request and response bodies of the review API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

NodeType = Literal["annotation", "shot", "character", "track", "caption", "speech_segment"]
HistoryNodeType = Literal[
    "annotation", "shot", "character", "track", "caption", "speech_segment", "keypoint_frame"
]


class Transition(BaseModel):
    version: int = Field(ge=1, description="The node's version the reviewer saw")


class Region(BaseModel):
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)


class PinIn(BaseModel):
    """Where a comment points (see app.review.service.Pin)."""

    frame: int | None = Field(default=None, ge=0)
    point: int | None = Field(default=None, ge=0)
    region: Region | None = None


class RejectIn(Transition, PinIn):
    reason: str = Field(min_length=1, max_length=40)
    body: str = Field(min_length=1, max_length=5000)


class FrameFixIn(BaseModel):
    frame: int = Field(ge=0)
    points: list[list[float]] = Field(description="[x, y, visibility] per point")
    version: int = Field(ge=1, description="The frame's version the reviewer started from")


class FixIn(Transition):
    """The reviewer's correction: a caption's new text, or a track's changed frames."""

    text: str | None = Field(default=None, max_length=20_000)
    frames: list[FrameFixIn] = Field(default_factory=list, max_length=10_000)


class CommentIn(PinIn):
    body: str = Field(min_length=1, max_length=5000)


class ReopenIn(Transition):
    reason: str = Field(min_length=1, max_length=2000)


class ReplyIn(BaseModel):
    body: str = Field(min_length=1, max_length=5000)


class ResolveIn(BaseModel):
    resolved: bool


class NodeRefIn(BaseModel):
    type: NodeType
    id: int


class ApproveChildrenIn(BaseModel):
    shown: list[NodeRefIn] = Field(description="The children the review panel displayed")


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


class ChildrenApprovalRead(BaseModel):
    approved: list[NodeRefIn]
    not_shown: list[NodeRefIn]
    blocked: dict[str, str]


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
