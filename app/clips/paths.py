"""Where a clip's media are in the media store: its source video and what the pipeline made.

Kept apart from the clip service so that the pipeline's steps can find media without importing
the service that queues them. Nothing here assumes another process's disk: a source or frame
read on this host comes from the store (through the host's bounded cache for a bucket)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, object_session

from app.clips.models import Clip
from app.clips.source_store import source_storage
from app.core.storage import clip_prefix, get_storage
from app.core.storage_api import Storage
from app.media.framecache import FrameCache
from app.media.stored import frames_key, stored_frames

# Derived files browsers fetch from the store itself when it has presigned URLs (a bucket):
# a video's range requests then go to the store and no web host keeps a copy. Frames,
# thumbnails and filmstrips stay streamed by the web from its cache (same origin, so the
# editor's canvas can read them, ETag/304, and faster: BENCHMARKS.md, "Media from the
# object store").
DIRECT_MEDIA = frozenset({"preview.mp4"})


def clip_store(session: Session | None, source_id: int | None) -> Storage:
    """The store a clip's source video (its ``storage_key``) is read from: the media store, or
    the bucket of the source it was listed in (``source_id``; ``session`` then needed)."""
    if source_id is None:
        return get_storage()
    assert session is not None  # a clip with a source was read through a session
    return source_storage(session, source_id)


def source_path(clip: Clip) -> Path:
    """A file on this host with the clip's source video (FileNotFoundError when it is gone)."""
    return clip_store(object_session(clip), clip.source_id).local_file(clip.storage_key)


def media_key(clip: Clip, name: str) -> str:
    """The key of one of the clip's derived files (``preview.mp4``, ``waveform.json``, ...)."""
    return f"{clip_prefix(clip.project_id, clip.id)}/{name}"


def direct_media_url(clip: Clip, name: str) -> str | None:
    """A short-lived URL of the store for the derived file ``name`` when browsers fetch it
    there (`DIRECT_MEDIA`); None when the web serves it. FileNotFoundError while not made."""
    if name not in DIRECT_MEDIA:
        return None
    storage = get_storage()
    key = media_key(clip, name)
    url = storage.presigned_get(key)
    if url is not None and not storage.exists(key):
        raise FileNotFoundError(key)
    return url


def clip_frames(clip: Clip) -> FrameCache:
    """The clip's frame cache (FileNotFoundError while the frames step has not built it)."""
    return stored_frames(get_storage(), clip_prefix(clip.project_id, clip.id))


def frames_ready(clip: Clip) -> bool:
    return get_storage().exists(frames_key(clip_prefix(clip.project_id, clip.id)))
