"""Clips in the database: their metadata (specs), reads, lists and pages, deletion, and bulk
actions over a selection (bulk records without media: records.py)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind
from app.batches.models import Batch, BatchClip
from app.clips.filters import filter_conditions
from app.clips.models import Clip, ClipState
from app.clips.paths import media_key, source_path
from app.clips.schemas import ClipListFilter
from app.core.errors import Conflict, DomainError, Invalid, NotFound
from app.core.storage import clip_prefix, delete_after_commit, get_storage
from app.pipeline.models import Job, JobState
from app.projects.models import Project, Subset

# Audio-only types are accepted so that such a file becomes a failed clip with a clear reason
# ("no video stream") instead of vanishing from a folder import.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".gif", ".y4m",
     ".m4a", ".mp3", ".wav", ".ogg", ".aac"}
)  # fmt: skip


@dataclass
class ClipSpec:
    """Metadata that comes with a file (from a form, the CLI or a manifest row)."""

    subsets: list[str] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None


def check_subsets(project: Project, subsets: Sequence[str]) -> list[str]:
    valid = {s.value for s in Subset}
    unknown = [s for s in subsets if s not in valid]
    if unknown:
        raise Invalid(f"Unknown subsets: {', '.join(unknown)}.")
    outside = [s for s in subsets if s not in project.subsets]
    if outside:
        raise Invalid(f"Project {project.name!r} has no subset {', '.join(outside)}.")
    return list(subsets) or list(project.subsets[:1])


def get_clip(session: Session, clip_id: int) -> Clip:
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"No clip {clip_id}.")
    return clip


def clip_with_hash(session: Session, project_id: int, digest: str) -> int | None:
    """The project's clip with this content (sha256 hex), if there is one."""
    return session.scalar(
        select(Clip.id).where(Clip.project_id == project_id, Clip.content_hash == digest)
    )


def running_step(session: Session, clip_id: int) -> str | None:
    return session.scalar(
        select(Job.step).where(Job.clip_id == clip_id, Job.state == JobState.running).limit(1)
    )


def delete_clip(session: Session, clip_id: int) -> None:
    """Delete a clip nobody has worked on, with its jobs and model drafts; its media files go
    once the transaction commits.

    A clip in a batch or with a person's annotation is refused (Conflict): deleting it would
    silently throw away work. So is a clip a pipeline step is running on right now.
    """
    clip = get_clip(session, clip_id)
    batch = session.scalar(
        select(Batch.name).join(BatchClip, BatchClip.batch_id == Batch.id)
        .where(BatchClip.clip_id == clip_id).limit(1)
    )  # fmt: skip
    if batch is not None:
        raise Conflict(f"Clip {clip_id} is in batch {batch!r}; it cannot be deleted.")
    worked_on = session.scalar(
        select(Annotation.id)
        .where(Annotation.clip_id == clip_id, Annotation.kind != AnnotationKind.model)
        .limit(1)
    )
    if worked_on is not None:
        raise Conflict(f"Clip {clip_id} has annotations by people; it cannot be deleted.")
    if (step := running_step(session, clip_id)) is not None:
        raise Conflict(
            f"The {step} step is running on clip {clip_id}; delete it once the step has finished."
        )
    if clip.storage_key:  # records-only clips have no media of their own
        delete_after_commit(session, clip_prefix(clip.project_id, clip.id))
    session.delete(clip)
    session.flush()


def list_clips(
    session: Session,
    project_id: int,
    *,
    state: ClipState | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Clip]:
    """Keyset-paginated clips of a project (ids after ``after_id``)."""
    query = select(Clip).where(Clip.project_id == project_id, Clip.id > after_id)
    if state is not None:
        query = query.where(Clip.state == state)
    return list(session.scalars(query.order_by(Clip.id).limit(limit)))


@dataclass(frozen=True)
class ClipPage:
    """One page of the clips list, newest first, with the cursors to the pages around it."""

    clips: list[Clip]
    newer_than: int | None  # ``after`` cursor of the previous (newer) page, if there is one
    older_than: int | None  # ``before`` cursor of the next (older) page, if there is one


def _list_conditions(
    session: Session, project_id: int, flt: ClipListFilter
) -> list[ColumnElement[bool]]:
    conds = filter_conditions(session, project_id, flt.clip_filter)
    if flt.name.strip():
        literal = re.sub(r"([\\%_])", r"\\\1", flt.name.strip())  # the text as typed, not a pattern
        conds.append(Clip.filename.ilike(f"%{literal}%", escape="\\"))
    if flt.batch_id is not None:
        conds.append(
            exists().where(BatchClip.batch_id == flt.batch_id, BatchClip.clip_id == Clip.id)
        )
    return conds


def page_clips(
    session: Session,
    project_id: int,
    flt: ClipListFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> ClipPage:
    """A page of matching clips, newest first: below ``before``, above ``after``, or the first.

    Keyset pagination on the clip id (``ix_clip_project_id``, ``ix_clip_project_state``), so a
    page deep in 400k clips costs what the first does and rows never shift between pages. A
    cursor whose page has emptied (its clips were deleted) falls back to the first page.
    """
    conds = _list_conditions(session, project_id, flt)
    if after is not None:
        newer = select(Clip).where(*conds, Clip.id > after).order_by(Clip.id).limit(limit)
        clips = list(reversed(session.scalars(newer).all()))
    else:
        query = select(Clip).where(*conds)
        if before is not None:
            query = query.where(Clip.id < before)
        clips = list(session.scalars(query.order_by(Clip.id.desc()).limit(limit)))
    if not clips:
        if before is None and after is None:
            return ClipPage([], None, None)
        return page_clips(session, project_id, flt, limit=limit)

    def any_where(cond: ColumnElement[bool]) -> bool:
        return session.scalar(select(Clip.id).where(*conds, cond).limit(1)) is not None

    top, bottom = clips[0].id, clips[-1].id
    return ClipPage(
        clips,
        newer_than=top if any_where(Clip.id > top) else None,
        older_than=bottom if any_where(Clip.id < bottom) else None,
    )


MAX_BULK = 1000


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk action did: the clips it acted on and, for each clip it refused, why."""

    done: list[int]
    refused: dict[int, str]  # clip id -> why it was left alone


def project_clips(session: Session, project_id: int, clip_ids: Iterable[int]) -> list[Clip]:
    """The selected clips (newest first), all of them in the project or none (NotFound)."""
    ids = set(clip_ids)
    if not ids:
        raise Invalid("Select at least one clip first.")
    if len(ids) > MAX_BULK:
        raise Invalid(f"Select at most {MAX_BULK} clips at a time ({len(ids)} selected).")
    query = select(Clip).where(Clip.project_id == project_id, Clip.id.in_(ids))
    clips = list(session.scalars(query.order_by(Clip.id.desc())))
    if missing := sorted(ids - {c.id for c in clips}):
        raise NotFound(f"No clip {', '.join(map(str, missing[:20]))} in this project.")
    return clips


def each_clip(
    session: Session,
    project_id: int,
    clip_ids: Iterable[int],
    act: Callable[[Session, int], object],
) -> BulkOutcome:
    """``act`` on each clip of the project, each in a savepoint: one refusal spoils no other."""
    done: list[int] = []
    refused: dict[int, str] = {}
    for clip_id in [c.id for c in project_clips(session, project_id, clip_ids)]:
        try:
            with session.begin_nested():
                act(session, clip_id)
        except DomainError as exc:
            refused[clip_id] = exc.message
        else:
            done.append(clip_id)
    return BulkOutcome(done, refused)


def delete_clips(session: Session, project_id: int, clip_ids: Iterable[int]) -> BulkOutcome:
    """:func:`delete_clip` on each clip; those it refuses (people's work on them) are kept."""
    return each_clip(session, project_id, clip_ids, delete_clip)


def clip_states(session: Session, clip_ids: Iterable[int]) -> list[ClipState]:
    """The pipeline state of each of these clips that still exists."""
    return list(session.scalars(select(Clip.state).where(Clip.id.in_(list(clip_ids)))))


def state_counts(session: Session, project_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Clip.state, func.count()).where(Clip.project_id == project_id).group_by(Clip.state)
    )
    counts = {s.value: 0 for s in ClipState}
    counts.update({state.value: n for state, n in rows})
    return counts


WAVEFORM_BINS_PER_SECOND = 100


def waveform_json(clip: Clip) -> bytes:
    """Peaks of the clip's audio for drawing a waveform; cached beside the clip's media."""
    storage = get_storage()
    key = media_key(clip, "waveform.json")
    with contextlib.suppress(FileNotFoundError), storage.open(key) as cached:
        return cached.read()
    if not clip.has_audio:
        return b'{"peaks": [], "bins_per_second": 100}'
    import numpy as np

    from app.media.decode import read_audio

    rate = 16000
    samples = read_audio(source_path(clip), sample_rate=rate).astype(np.float32) / 32768.0
    step = rate // WAVEFORM_BINS_PER_SECOND
    usable = len(samples) // step * step
    peaks = np.abs(samples[:usable]).reshape(-1, step).max(axis=1) if usable else np.zeros(0)
    scale = float(peaks.max()) if peaks.size and peaks.max() > 0 else 1.0
    body = json.dumps(
        {
            "peaks": [round(float(p) / scale, 3) for p in peaks],
            "bins_per_second": WAVEFORM_BINS_PER_SECOND,
        }
    ).encode()
    with storage.scratch() as folder:
        (folder / "waveform.json").write_bytes(body)
        storage.publish(key, folder / "waveform.json")
    return body
