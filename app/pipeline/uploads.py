"""Browser uploads straight to the bucket: a presigned multipart upload per file, resumable,
that becomes a clip without its bytes ever passing through the web process.

The browser starts an upload, asks for a presigned URL per part, PUTs the parts to the store
and completes; a browser that was interrupted asks the status (the parts the store already has,
from ListParts) and sends only the rest. Completing copies the object inside the store to the
clip's source key and queues the pipeline; the content hash, unknown without reading the bytes,
is settled by the probe step (app/pipeline/steps.py: settle_hash), which fails a duplicate.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clips.models import PENDING_HASH_PREFIX
from app.clips.service import ClipSpec, check_subsets
from app.core.config import get_settings
from app.core.db import utcnow
from app.core.errors import Conflict, Invalid, NotFound, StorageUnavailable, TooLarge
from app.core.s3_storage import Refusal, S3Storage, classify
from app.core.storage import media_bucket
from app.pipeline.intake import ImportOutcome, create_clip, file_type_problem
from app.pipeline.models import Upload, UploadState
from app.projects.models import Project

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024**2
MAX_PARTS = 10_000  # S3's limit: bigger files get bigger parts


class UploadStart(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    content_type: str = ""
    subsets: list[str] = Field(default_factory=list)


class UploadRead(BaseModel):
    """An upload as the browser sees it: ``parts_done`` are the parts it need not send."""

    id: int
    filename: str
    size: int
    part_size: int
    part_count: int
    state: UploadState
    parts_done: list[int] = Field(default_factory=list)
    clip_id: int | None = None


class PartNumbers(BaseModel):
    parts: list[int] = Field(min_length=1, max_length=100)


class PartUrls(BaseModel):
    urls: dict[int, str]


def _bucket() -> S3Storage:
    return media_bucket("Uploads straight to the bucket need STORAGE_URL=s3://bucket/prefix.")


def _part_size(size: int) -> int:
    mib = 1024**2
    return max(PART_SIZE, math.ceil(size / MAX_PARTS / mib) * mib)


def _part_count(upload: Upload) -> int:
    return max(1, math.ceil(upload.size / upload.part_size))


def _expected_size(upload: Upload, number: int) -> int:
    return min(upload.part_size, upload.size - (number - 1) * upload.part_size)


def _read(upload: Upload, parts_done: list[int] | None = None) -> UploadRead:
    return UploadRead(
        id=upload.id,
        filename=upload.filename,
        size=upload.size,
        part_size=upload.part_size,
        part_count=_part_count(upload),
        state=upload.state,
        parts_done=parts_done or [],
        clip_id=upload.clip_id,
    )


def start_upload(session: Session, project: Project, user_id: int, body: UploadStart) -> UploadRead:
    """Check the file's type and size, then open a multipart upload under ``uploads/``."""
    name = Path(body.filename).name
    if (problem := file_type_problem(name)) is not None:
        raise Invalid(problem, field="filename")
    limit = get_settings().max_upload_bytes
    if body.size > limit:
        raise TooLarge(
            f"{name} is {body.size:,} bytes, larger than the limit of {limit:,} bytes.",
            field="size",
        )
    subsets = check_subsets(project, body.subsets)
    key = f"uploads/{uuid.uuid4().hex}/source{Path(name).suffix.lower()}"
    content_type = (body.content_type or "application/octet-stream")[:100]
    upload = Upload(
        project_id=project.id,
        created_by=user_id,
        filename=name[:255],
        size=body.size,
        content_type=content_type,
        subsets=subsets,
        key=key,
        upload_id="",
        part_size=_part_size(body.size),
    )
    with _store_errors():
        upload.upload_id = _bucket().start_multipart(key, content_type)
    session.add(upload)
    session.flush()
    return _read(upload)


def get_upload(session: Session, upload_id: int, user_id: int) -> Upload:
    """The upload, only for the admin who started it (NotFound for anyone else)."""
    upload = session.get(Upload, upload_id)
    if upload is None or upload.created_by != user_id:
        raise NotFound(f"No upload {upload_id}.")
    return upload


def _whole_parts(upload: Upload, listed: list[tuple[int, str, int]]) -> dict[int, str]:
    """Number -> ETag of the listed parts that are whole (one of another size is sent again)."""
    return {n: etag for n, etag, size in listed if size == _expected_size(upload, n)}


@contextmanager
def _store_errors(upload: Upload | None = None) -> Iterator[None]:
    """The store down or refusing: a clear, retryable error instead of a 500."""
    try:
        yield
    except ClientError as exc:
        if classify(exc).kind is Refusal.NO_UPLOAD and upload is not None:
            raise Conflict(
                f"The store no longer has upload {upload.id} of {upload.filename}; start again."
            ) from exc
        raise StorageUnavailable(f"The media store refused the request: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(
            f"The media store cannot be reached; try again later ({exc})."
        ) from exc


def upload_status(session: Session, upload: Upload) -> UploadRead:
    """The upload with the parts already in the store (what a resumed browser skips)."""
    if upload.state != UploadState.open:
        return _read(upload)
    with _store_errors(upload):
        listed = _bucket().list_parts(upload.key, upload.upload_id)
    return _read(upload, sorted(_whole_parts(upload, listed)))


def _require_open(upload: Upload) -> None:
    if upload.state != UploadState.open:
        raise Conflict(f"Upload {upload.id} is {upload.state.value}; start a new one.")


def part_urls(session: Session, upload: Upload, numbers: list[int]) -> PartUrls:
    """Presigned PUT URLs for these part numbers (valid PRESIGNED_URL_SECONDS)."""
    _require_open(upload)
    count = _part_count(upload)
    if bad := sorted({n for n in numbers if not 1 <= n <= count}):
        raise Invalid(f"Upload {upload.id} has parts 1 to {count}, not {bad[0]}.")
    bucket = _bucket()
    with _store_errors(upload):
        urls = {n: bucket.presign_part(upload.key, upload.upload_id, n) for n in numbers}
    return PartUrls(urls=urls)


def complete_upload(session: Session, upload: Upload) -> ImportOutcome:
    """Complete the multipart upload once every part is in the store, then register the clip
    (the object copied inside the store to the clip's key) and queue its pipeline. Completing
    again after success answers the same clip."""
    session.refresh(upload, with_for_update=True)  # one completion at a time (double clicks)
    if upload.state == UploadState.completed:
        return ImportOutcome(name=upload.filename, status="created", clip_id=upload.clip_id)
    _require_open(upload)
    bucket = _bucket()
    with _store_errors(upload):
        if bucket.exists(upload.key):  # completed by an earlier try whose transaction was lost
            parts = None
        else:
            parts = _whole_parts(upload, bucket.list_parts(upload.key, upload.upload_id))
    if parts is not None:
        count = _part_count(upload)
        if missing := [n for n in range(1, count + 1) if n not in parts]:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise Invalid(
                f"{upload.filename} is not all in the store yet: {len(missing)} of {count} "
                f"parts missing ({shown}). Send them, then complete again."
            )
        with _store_errors(upload):
            bucket.complete_multipart(upload.key, upload.upload_id, sorted(parts.items()))
    project = session.get_one(Project, upload.project_id)
    spec = ClipSpec(subsets=upload.subsets)
    pending = f"{PENDING_HASH_PREFIX}{upload.id}"
    with _store_errors(upload):
        outcome = create_clip(
            session, project, upload.filename, pending, upload.size, spec,
            lambda key: bucket.copy(upload.key, key),
        )  # fmt: skip
        bucket.delete_tree(upload.key)
    upload.state = UploadState.completed
    upload.completed_at = utcnow()
    upload.clip_id = outcome.clip_id
    session.flush()
    return outcome


def abort_upload(session: Session, upload: Upload) -> None:
    """Give the upload up: the store drops its parts (an upload already gone is fine)."""
    _require_open(upload)
    bucket = _bucket()
    try:
        with _store_errors(upload):
            bucket.abort_multipart(upload.key, upload.upload_id)
    except Conflict:
        pass  # the store has no such upload any more: nothing left to drop
    with _store_errors(upload):
        bucket.delete_tree(upload.key)  # completed by a try whose transaction was lost
    upload.state = UploadState.aborted
    session.flush()


def abort_stale_uploads(session: Session, *, older_than: timedelta) -> list[int]:
    """Abort open uploads started more than ``older_than`` ago (a closed tab never resumed);
    one the store cannot abort now stays open for the next sweep."""
    stale = session.scalars(
        select(Upload).where(
            Upload.state == UploadState.open, Upload.created_at < utcnow() - older_than
        )
    ).all()
    aborted = []
    for upload in stale:
        try:
            abort_upload(session, upload)
        except (StorageUnavailable, Invalid) as exc:  # store down, or no longer configured
            log.warning("upload %s not aborted, kept for the next sweep: %s", upload.id, exc)
            continue
        aborted.append(upload.id)
    return aborted


def allow_browser_origins(origins: list[str]) -> None:
    """Let pages from ``origins`` (the web's public addresses) PUT upload parts to the bucket
    and read the answers: the bucket's CORS rule (AWS S3 and R2 refuse without it)."""
    with _store_errors():
        _bucket().ensure_cors(origins)
