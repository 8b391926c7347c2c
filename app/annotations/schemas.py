from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.annotations.models import CharacterKind


class FrameSave(BaseModel):
    points: list[list[float]] = Field(description="[[x, y, v], ...] in the track's skeleton order")
    version: int = Field(ge=1)
    apply_to_held_run: bool = False
    keyframe: bool | None = None
    accepted: list[int] = Field(
        default_factory=list,
        description="points the person accepted where the model put them (see save_frame)",
        max_length=10_000,
    )
    box: list[float] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="the character box [x, y, w, h] in clip pixels; null clears it, left out"
        " keeps it",
    )


class FrameRead(BaseModel):
    id: int
    frame: int
    version: int
    keyframe: bool
    flags: list[str]
    points: list[list[float]]
    human: list[int]
    tracked: list[int] = Field(
        description="per point, 1 if point tracking placed it (a guess until accepted), else 0"
    )
    box: list[float] | None = Field(None, description="the person-drawn box [x, y, w, h]")


class FrameState(BaseModel):
    """One frame exactly as it was: what undo and redo put back."""

    points: list[list[float]] = Field(description="[[x, y, v, confidence], ...]")
    human: list[int] = Field(description="per point, 1 if a person set it, 0 if the model did")
    tracked: list[int] = Field(
        default_factory=list,
        description="per point, 1 if point tracking placed it (among those no person set);"
        " empty: none",
    )
    keyframe: bool
    box: list[float] | None = Field(
        None, min_length=4, max_length=4, description="the character box [x, y, w, h], or null"
    )


class FrameChange(FrameRead):
    """A frame an action changed, with its state before the action."""

    before: FrameState


class RestoredFrame(FrameState):
    frame: int = Field(ge=0)
    version: int = Field(ge=1, description="the frame's version now (a stale one is a 409)")


class FramesRestore(BaseModel):
    """Put frames of one track back as they were (undo) or as an edit left them (redo)."""

    action: Literal["undo", "redo"]
    frames: list[RestoredFrame] = Field(min_length=1, max_length=100_000)


class Interpolate(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class CopyPrevious(BaseModel):
    frame: int = Field(ge=0)
    version: int = Field(ge=1)


class PointTracking(BaseModel):
    """Track a frame's labelled points through the shot (accepting them, the frame a keyframe)."""

    frame: int = Field(ge=0)
    version: int = Field(ge=1, description="the frame's version (a stale one is a 409)")
    direction: Literal["forward", "backward"] = "forward"
    points: list[int] | None = Field(
        None, max_length=10_000, description="only these points (a selection); null: all"
    )


class PointsTracked(BaseModel):
    frames: list[FrameChange] = Field(description="the frames written, each with its state before")
    points: int = Field(description="point positions written")
    lost: dict[int, list[int]] = Field(
        description="frame -> points tracking lost there (the frame is flagged track_lost)"
    )
    reached: int | None = Field(description="the last frame tracking carried a point to")


class Accept(BaseModel):
    threshold: float = Field(ge=0.0, le=1.0)
    frames: list[int] | None = None


class Accepted(BaseModel):
    accepted: int
    frames: list[FrameChange] = Field(default_factory=list)


class SpanAccept(BaseModel):
    """Accept the guesses shown from the last keyframe up to this frame."""

    frame: int = Field(ge=0)


class SpanAccepted(BaseModel):
    start: int = Field(description="the first frame of the span (after its keyframe)")
    end: int = Field(description="the span's last frame (the one accepted from)")
    frames: list[FrameChange] = Field(description="the frames written, each with its state before")


class CaptionSave(BaseModel):
    text: str = Field(max_length=20_000)
    version: int = Field(ge=1)


class TagsSave(BaseModel):
    tags: dict[str, Any]
    version: int = Field(ge=1)


class ShotsSave(BaseModel):
    starts: list[int]
    version: int = Field(ge=1)


class CharacterCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: CharacterKind
    skeleton: str = Field(min_length=1, max_length=64)


class Status(BaseModel):
    id: int
    status: str
    version: int
