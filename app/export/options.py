"""What a snapshot is asked for beyond its formats and clips: whether the frame images go in
(and how they are encoded), how clips are split into train/val/test, and the licence and
source a dataset card states.

Stored with the snapshot (``export_snapshot.options``), so a rebuild gives the same archive.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

ImageFormat = Literal["jpg", "png"]


class ExportOptions(BaseModel):
    """The build options of one snapshot; the defaults are those of an old row (``{}``)."""

    frames: bool = Field(True, description="write the annotated frames' images")
    image_format: ImageFormat = "jpg"
    jpeg_quality: int = Field(88, ge=1, le=100, description="88 copies the frame cache as is")
    val_percent: float = Field(10.0, ge=0, le=50, description="clips in val, per stratum")
    test_percent: float = Field(0.0, ge=0, le=50, description="clips in test (0: no test)")
    split_seed: int = Field(0, ge=0, description="the same seed gives the same split")
    licence: str = Field("", max_length=2000)
    source: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _some_train(self) -> ExportOptions:
        if self.val_percent + self.test_percent >= 100:
            raise ValueError("val and test together must leave clips for train")
        return self

    @property
    def image_ext(self) -> str:
        return self.image_format
