"""The built-in pipeline steps. Each takes (session, clip), is idempotent, returns a summary."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy.orm import Session

from app.clips.models import PENDING_HASH_PREFIX, Clip
from app.clips.paths import source_path
from app.clips.service import clip_with_hash
from app.core.config import get_settings
from app.core.storage import clip_prefix, get_storage
from app.media.decode import Image
from app.media.framecache import INDEX_NAME, FrameCache, build_frame_cache
from app.media.preview import make_filmstrip, make_preview, make_thumbnail
from app.media.probe import ProbeError, ProbeLimits, probe_video
from app.pipeline.registry import StepFailed, register_step


def probe_limits() -> ProbeLimits:
    settings = get_settings()
    return ProbeLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_video_pixels,
        max_duration_s=settings.max_video_seconds,
    )


@register_step("probe")
def probe_step(session: Session, clip: Clip) -> dict[str, object]:
    """Container, codecs, fps, frame count, size, duration, audio; a bad file fails the clip.
    A clip uploaded straight to the bucket gets its content hash here (see settle_hash)."""
    if clip.content_hash.startswith(PENDING_HASH_PREFIX):
        settle_hash(session, clip, source_path(clip))
    try:
        probe = probe_video(source_path(clip), probe_limits())
    except ProbeError as exc:
        raise StepFailed(exc.message, kind=exc.kind, fail_clip=True) from exc
    clip.container = probe.container_format
    clip.video_codec = probe.video_codec
    clip.audio_codec = probe.audio_codec
    clip.width, clip.height = probe.width, probe.height
    clip.fps = probe.fps
    clip.frame_count = probe.frame_count
    clip.duration_s = probe.duration_s
    clip.has_audio = probe.has_audio
    clip.variable_frame_rate = probe.variable_frame_rate
    clip.probe = {
        "bit_rate": probe.bit_rate,
        "pix_fmt": probe.pix_fmt,
        "rotation": probe.rotation,
        "declared_frame_count": probe.declared_frame_count,
        "audio_sample_rate": probe.audio_sample_rate,
        "audio_channels": probe.audio_channels,
    }
    session.flush()
    return {"frames": probe.frame_count, "fps": probe.fps, "size": [probe.width, probe.height]}


def settle_hash(session: Session, clip: Clip, source: Path) -> None:
    """The sha256 of a clip's file, streamed from disk; a file the project already has fails
    the clip as a duplicate of that clip (nothing else is done with it)."""
    with source.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if (other := clip_with_hash(session, clip.project_id, digest)) not in (None, clip.id):
        raise StepFailed(f"Same content as clip {other}.", kind="duplicate", fail_clip=True)
    clip.content_hash = digest
    session.flush()


@register_step("frames")
def frames_step(session: Session, clip: Clip) -> dict[str, object]:
    """Frame-exact JPEG chunk cache, a browser-playable H.264 preview, thumbnail and filmstrip."""
    storage = get_storage()
    prefix = clip_prefix(clip.project_id, clip.id)
    source = source_path(clip)
    middle = max((clip.frame_count or 1) // 2, 0)
    kept: dict[str, Image] = {}

    def keep_middle(index: int, rgb: Image) -> None:
        if index == middle:
            kept["rgb"] = rgb

    with storage.scratch() as work:  # built on this host, then published to the store
        info = build_frame_cache(source, work / "frames", on_frame=keep_middle)
        if info.count != clip.frame_count:
            raise StepFailed(
                f"Decoding gave {info.count} frames but probing counted {clip.frame_count}; "
                "the file changed or is damaged.",
                kind="corrupt",
                fail_clip=True,
            )
        preview = make_preview(source, work / "preview.mp4")
        if "rgb" in kept:
            make_thumbnail(kept["rgb"], work / "thumb.jpg")
        strip = make_filmstrip(FrameCache(work / "frames"), work / "filmstrip.jpg")
        storage.publish_tree(f"{prefix}/frames", work / "frames", last=[INDEX_NAME])
        for made in ("preview.mp4", "thumb.jpg", "filmstrip.jpg"):
            if (work / made).is_file():
                storage.publish(f"{prefix}/{made}", work / made)
    return {
        "frames": info.count,
        "cache_bytes": info.total_bytes,
        "preview_mime": preview.mime,
        "filmstrip_frames": strip.indices,
    }
