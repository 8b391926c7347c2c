"""Imports every feature's models so metadata (Alembic, tests) sees the whole schema."""

from app.agreement.models import AgreementRollup, AgreementScore
from app.annotations.models import (
    Annotation,
    Caption,
    Character,
    KeypointFrame,
    Revision,
    Shot,
    SpeechSegment,
    Track,
)
from app.auth.models import ApiToken, User, UserSession
from app.batches.models import Assignment, Batch, BatchClip, BatchMember
from app.clips.models import Clip
from app.core.db import Base
from app.core.models import OutboxMessage
from app.export.models import ExportSnapshot
from app.pipeline.models import Job
from app.projects.models import Project, SkeletonTemplate
from app.review.models import ReviewComment

__all__ = [
    "AgreementRollup",
    "AgreementScore",
    "Annotation",
    "ApiToken",
    "Assignment",
    "Base",
    "Batch",
    "BatchClip",
    "BatchMember",
    "Caption",
    "Character",
    "Clip",
    "ExportSnapshot",
    "Job",
    "KeypointFrame",
    "OutboxMessage",
    "Project",
    "ReviewComment",
    "Revision",
    "Shot",
    "SkeletonTemplate",
    "SpeechSegment",
    "Track",
    "User",
    "UserSession",
]  # fmt: skip
