"""Clips entering the pipeline: files, folders, uploads and manifests imported (content-hash
de-duplicated, each new clip queued for the pipeline), and clips sent through it again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clips.models import Clip
from app.clips.records import read_manifest
from app.clips.service import (
    VIDEO_EXTENSIONS,
    BulkOutcome,
    ClipSpec,
    check_subsets,
    clip_with_hash,
    each_clip,
    get_clip,
    running_step,
)
from app.core.config import get_settings
from app.core.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from app.core.storage import clip_prefix, get_storage
from app.pipeline.models import Job
from app.pipeline.service import queue_pipeline
from app.projects.models import Project


class ImportOutcome(BaseModel):
    """What happened to one input: created, duplicate (of ``clip_id``) or error (``message``)."""

    name: str
    status: str = Field(description="created, duplicate or error")
    clip_id: int | None = None
    message: str = ""
    # For errors: "file_type" or "too_large" (the web answers 422 / 413); never sent.
    refusal: str = Field("", exclude=True)


def create_clip(
    session: Session,
    project: Project,
    name: str,
    digest: str,
    size: int,
    spec: ClipSpec,
    place: Callable[[str], None],
) -> ImportOutcome:
    """Register a file as a new clip, ``place`` putting its bytes at the clip's source key, or
    report the duplicate (``digest`` known) without placing anything."""
    existing = clip_with_hash(session, project.id, digest)
    if existing is not None:
        return ImportOutcome(
            name=name,
            status="duplicate",
            clip_id=existing,
            message=f"Same content as clip {existing}.",
        )
    subsets = check_subsets(project, spec.subsets)
    ext = Path(name).suffix.lower() or ".bin"
    try:
        with session.begin_nested():
            clip = Clip(
                project_id=project.id,
                filename=Path(name).name[:255],
                storage_key="",
                content_hash=digest,
                size_bytes=size,
                subsets=subsets,
                source_tags=spec.tags,
                external_id=spec.external_id,
            )
            session.add(clip)
            session.flush()
    except IntegrityError:  # the same file arrived concurrently
        other = clip_with_hash(session, project.id, digest)
        return ImportOutcome(
            name=name, status="duplicate", clip_id=other, message=f"Same content as clip {other}."
        )
    clip.storage_key = f"{clip_prefix(project.id, clip.id)}/source{ext}"
    place(clip.storage_key)
    session.flush()
    queue_pipeline(session, clip)
    return ImportOutcome(name=name, status="created", clip_id=clip.id)


def file_type_problem(name: str) -> str | None:
    """Why a file of this name is refused, or None for a video (or audio) file type."""
    if Path(name).suffix.lower() not in VIDEO_EXTENSIONS:
        return f"Not a video file type. Accepted: {' '.join(sorted(VIDEO_EXTENSIONS))}"
    return None


def _type_error(name: str) -> ImportOutcome | None:
    if (problem := file_type_problem(name)) is not None:
        return ImportOutcome(name=name, status="error", message=problem, refusal="file_type")
    return None


def import_stream(
    session: Session, project: Project, stream: BinaryIO, name: str, spec: ClipSpec | None = None
) -> ImportOutcome:
    """An upload: streamed to a staging file under the size limit, hashed, then registered."""
    if (bad := _type_error(name)) is not None:
        return bad
    storage = get_storage()
    key = f"uploads/.upload-{uuid.uuid4().hex}"
    try:
        size, digest = storage.save_stream(key, stream, max_bytes=get_settings().max_upload_bytes)

        def place(target: str) -> None:
            storage.move(key, target)

        return create_clip(session, project, name, digest, size, spec or ClipSpec(), place)
    except TooLarge as exc:
        return ImportOutcome(name=name, status="error", message=exc.message, refusal="too_large")
    finally:
        storage.delete_tree(key)  # a duplicate's bytes (a new clip's were moved away)


def import_file(
    session: Session, project: Project, path: Path, spec: ClipSpec | None = None
) -> ImportOutcome:
    """A file on the server: copied into storage (the original stays where it is)."""
    name = path.name
    if not path.is_file():
        return ImportOutcome(name=str(path), status="error", message="No such file.")
    if (bad := _type_error(name)) is not None:
        return bad
    with path.open("rb") as fh:
        return import_stream(session, project, fh, name, spec)


def expand_paths(paths: Iterable[Path], root: Path | None = None) -> list[Path]:
    """Files as given, folders walked recursively for video files, in a stable order. With
    ``root``, every file is resolved (links followed) and one that lands outside is skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            found.append(path)
    if root is None:
        return found
    return [p.resolve() for p in found if p.resolve().is_relative_to(root)]


def import_from_server(
    session: Session, project: Project, given: str, spec: ClipSpec | None = None
) -> list[ImportOutcome]:
    """Import the server folder or file an admin named, which must lie under the import root
    (links resolved, inside the folder too); the web has no folder import while none is set."""
    root = get_settings().import_root
    if root is None:
        raise Forbidden("Server folder import is off: set IMPORT_ROOT to the folder it may read.")
    if "\0" in given:
        raise Invalid("The path contains a NUL character.")
    root = root.resolve()
    target = (root / given).resolve()  # an absolute `given` replaces the root
    if not target.is_relative_to(root):
        raise Forbidden(f"Server imports must come from under {root}.")
    if not target.exists():
        raise NotFound(f"Nothing at {given} on the server.")
    return import_paths(session, project, [target], spec, root=root)


def import_paths(
    session: Session,
    project: Project,
    paths: Sequence[Path],
    spec: ClipSpec | None = None,
    progress: Callable[[ImportOutcome], None] | None = None,
    root: Path | None = None,
) -> list[ImportOutcome]:
    """Import files and folders; with ``root``, nothing found outside it (see expand_paths)."""
    outcomes = []
    for path in expand_paths(paths, root):
        outcome = import_file(session, project, path, spec)
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def import_manifest(
    session: Session,
    project: Project,
    manifest: Path,
    progress: Callable[[ImportOutcome], None] | None = None,
) -> list[ImportOutcome]:
    """Every row is validated before any file is imported, so a bad manifest imports nothing."""
    rows = read_manifest(manifest)
    for row in rows:
        check_subsets(project, row.spec.subsets)
    outcomes = []
    for row in rows:
        outcome = import_file(session, project, Path(row.path), row.spec)
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def retry_pipeline(session: Session, clip_id: int) -> list[Job]:
    """Run every pipeline step of a clip again from the start (after a failure, or to redo it).

    Refused while a step is running (Conflict) and for a records-only clip, which has no
    media file to process (Invalid).
    """
    clip = get_clip(session, clip_id)
    if not clip.storage_key:
        raise Invalid(f"Clip {clip_id} has no media file yet (it was imported as a record).")
    if (step := running_step(session, clip_id)) is not None:
        raise Conflict(f"The {step} step is running on clip {clip_id}; retry once it finishes.")
    return queue_pipeline(session, clip)


def retry_pipelines(session: Session, project_id: int, clip_ids: Iterable[int]) -> BulkOutcome:
    """:func:`retry_pipeline` on each clip; those it refuses (a step running) are reported."""
    return each_clip(session, project_id, clip_ids, retry_pipeline)
