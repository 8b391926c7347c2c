"""Where a clip's files are on disk: its source video and the folder of what the pipeline made.

Kept apart from the clip service so that the pipeline's steps can find media without importing
the service that queues them."""

from __future__ import annotations

from pathlib import Path

from app.clips.models import Clip
from app.core.storage import clip_prefix, get_storage


def source_path(clip: Clip) -> Path:
    """The clip's source video file."""
    return get_storage().path(clip.storage_key)


def clip_media_dir(clip: Clip) -> Path:
    """The clip's folder: the source, the frame cache (``frames/``) and previews."""
    return get_storage().path(clip_prefix(clip.project_id, clip.id))
