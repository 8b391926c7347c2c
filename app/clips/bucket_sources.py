"""Clips from a bucket, as CVAT's and Label Studio's cloud storage: an admin registers an
``s3://bucket/prefix/``, its video objects become clip records in place (never copied; a
clip's ``storage_key`` is its object key in that bucket) and a re-sync adds new objects only.

The secret key is sealed at rest (app.core.secret_box) and decrypted only to build the
client that lists or reads the bucket (:func:`source_storage`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from botocore.exceptions import ClientError
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from app.annotations.models import Annotation, AnnotationKind
from app.auth.models import User
from app.batches.models import BatchClip
from app.clips.models import BucketSource, Clip, ClipState, SyncState
from app.clips.records import Record, insert_records
from app.clips.schemas import SourceCreate
from app.clips.service import VIDEO_EXTENSIONS
from app.clips.source_store import bucket_storage, get_source, source_storage, source_url
from app.core.db import utcnow
from app.core.errors import Conflict, Forbidden, Invalid, StorageUnavailable
from app.core.jobs import enqueue
from app.core.s3_storage import Refusal, S3Storage, classify
from app.core.secret_box import seal
from app.core.storage import clip_prefix, delete_after_commit
from app.core.storage_api import check_key
from app.projects.models import Project

SYNC_TASK = "cellabel.clips.sync_source"
SYNC_CHUNK = 10_000  # objects per COPY: the count on the page moves while a big bucket lists


def _check_listable(storage: S3Storage, prefix: str, data: SourceCreate) -> None:
    """One listing request, its refusals in words (beside the field to correct)."""
    where = data.endpoint_url or "AWS S3"
    no_bucket = Invalid(f"There is no bucket {storage.bucket!r} at {where}.", field="url")
    try:
        next(iter(storage.iter_objects(prefix)), None)
    except FileNotFoundError as exc:
        raise no_bucket from exc
    except StorageUnavailable as exc:
        raise Invalid(
            f"Cannot reach the endpoint {where}: check its address and that it is running.",
            field="endpoint_url",
        ) from exc
    except ClientError as exc:
        refusal = classify(exc)
        if refusal.kind is Refusal.NO_BUCKET:  # a bare 404 came as FileNotFoundError above
            raise no_bucket from exc
        if refusal.kind is Refusal.DENIED:
            raise Invalid(
                f"{where} refused these keys for bucket {storage.bucket!r} ({refusal.code}): "
                "check the access key id and the secret key, and that they may list the bucket.",
                field="secret_access_key",
            ) from exc
        raise Invalid(
            f"{where} refused to list the bucket: {refusal.code or exc}.", field="url"
        ) from exc


def register_source(
    session: Session, project: Project, data: SourceCreate, created_by: User | None = None
) -> BucketSource:
    """A new source of ``project``, once its bucket answers and lets these keys list it."""
    bucket, prefix, url = source_url(data.url)
    endpoint = data.endpoint_url.strip()
    taken = select(BucketSource.id).where(
        BucketSource.project_id == project.id, BucketSource.url == url,
        BucketSource.endpoint_url == endpoint,
    )  # fmt: skip
    if session.scalar(taken) is not None:
        raise Conflict(f"{url} is already a source of this project: sync it instead.", field="url")
    secret = data.secret_access_key.get_secret_value()
    if bool(data.access_key_id.strip()) != bool(secret):
        raise Invalid(
            "Give both the access key id and the secret key, or neither (the standard AWS "
            "variables of the server are used then).",
            field="secret_access_key",
        )
    storage = bucket_storage(
        bucket, endpoint, data.region.strip(), data.access_key_id.strip(), secret
    )
    _check_listable(storage, prefix, data)
    source = BucketSource(
        project_id=project.id, url=url, endpoint_url=endpoint, region=data.region.strip(),
        access_key_id=data.access_key_id.strip(), secret_encrypted=seal(secret) if secret else "",
        created_by_id=created_by.id if created_by else None,
    )  # fmt: skip
    session.add(source)
    session.flush()
    return source


def find_source(session: Session, project_id: int, url: str, endpoint: str) -> BucketSource | None:
    """The project's source for this address and endpoint, if registered."""
    return session.scalar(
        select(BucketSource).where(
            BucketSource.project_id == project_id, BucketSource.url == source_url(url)[2],
            BucketSource.endpoint_url == endpoint.strip(),
        )
    )  # fmt: skip


def list_sources(session: Session, project_id: int) -> list[BucketSource]:
    query = select(BucketSource).where(BucketSource.project_id == project_id)
    return list(session.scalars(query.order_by(BucketSource.id)))


def _unprocessed(source_id: int) -> tuple[ColumnElement[bool], ...]:
    """The source's clips the pipeline has not taken yet (the records its syncs created)."""
    return (Clip.source_id == source_id, Clip.state == ClipState.uploaded)


def unprocessed_clip_ids(session: Session, source_id: int, limit: int) -> list[int]:
    """The first ``limit`` clips of the source the pipeline has not taken yet, oldest first."""
    query = select(Clip.id).where(*_unprocessed(source_id)).order_by(Clip.id).limit(limit)
    return list(session.scalars(query))


def unprocessed_count(session: Session, source_id: int) -> int:
    """How many of the source's clips the pipeline has not taken yet."""
    query = select(func.count()).select_from(Clip).where(*_unprocessed(source_id))
    return int(session.scalar(query) or 0)


def unprocessed_counts(session: Session, project_id: int) -> dict[int, int]:
    """Source id -> how many of its clips the pipeline has not taken yet (sources with any)."""
    query = (
        select(Clip.source_id, func.count())
        .where(Clip.project_id == project_id, Clip.state == ClipState.uploaded,
               Clip.source_id.is_not(None))
        .group_by(Clip.source_id)
    )  # fmt: skip
    return {source_id: n for source_id, n in session.execute(query) if source_id is not None}


def source_hash(source_id: int, key: str) -> str:
    """The content-hash stand-in of a bucket object: a re-sync skips the keys it has."""
    return hashlib.sha256(f"source:{source_id}:{key}".encode()).hexdigest()


@dataclass(frozen=True)
class SyncResult:
    """One listing of a source: video objects seen and clip records created from them."""

    listed: int
    created: int


def _usable(key: str) -> bool:
    if key.rsplit(".", 1)[-1].lower() not in _EXTENSIONS:
        return False
    try:
        check_key(key)
    except Forbidden:  # ``..`` parts: such a key could not be read back safely
        return False
    return True


_EXTENSIONS = frozenset(ext.lstrip(".") for ext in VIDEO_EXTENSIONS)


def sync_source(
    session: Session, source_id: int, progress: Callable[[BucketSource], None] | None = None
) -> SyncResult:
    """List the source's prefix page by page and create a clip record for each video object
    not seen before (in COPY chunks; ``progress`` is called after each). Clips stay
    ``uploaded``: nothing is downloaded. Invalid when the bucket fails (see `sync_failed`).
    """
    source = get_source(session, source_id)
    project = session.get_one(Project, source.project_id)
    subsets = orjson.dumps(project.subsets[:1]).decode()
    storage = source_storage(session, source_id)
    prefix = source_url(source.url)[1]
    listed = created = 0
    chunk: list[Record] = []

    def flush() -> None:
        nonlocal created
        added = insert_records(session, project.id, chunk)
        created += added
        source.object_count += added
        source.last_key = chunk[-1][1][-1024:]  # the storage key
        chunk.clear()
        session.flush()
        if progress is not None:
            progress(source)

    try:
        for info in storage.iter_objects(prefix):
            if not _usable(info.key):
                continue
            listed += 1
            name = info.key.rsplit("/", 1)[-1][:255]
            chunk.append((name, info.key, source_hash(source.id, info.key), subsets, "{}", None,
                          "{}", info.size, source.id))  # fmt: skip
            if len(chunk) >= SYNC_CHUNK:
                flush()
        if chunk:
            flush()
    except (StorageUnavailable, ClientError) as exc:
        message = exc.message if isinstance(exc, StorageUnavailable) else str(exc)
        raise Invalid(f"Listing {source.url} failed: {message}") from exc
    source.state, source.error, source.last_synced_at = SyncState.synced, None, utcnow()
    session.flush()
    return SyncResult(listed=listed, created=created)


def sync_failed(session: Session, source_id: int, message: str) -> None:
    """Record on the source why its listing failed (in a transaction of its own: the failed
    one rolled back), for the sources page."""
    source = session.get(BucketSource, source_id)
    if source is not None:  # else deleted meanwhile: nothing to record
        source.state, source.error = SyncState.failed, message
        session.flush()


def request_sync(session: Session, source_id: int, project_id: int | None = None) -> BucketSource:
    """Queue a background listing of the source (sent through the outbox after commit); a
    listing twice at once is harmless, the second one finds every record there."""
    source = get_source(session, source_id, project_id)
    source.state, source.error = SyncState.queued, None
    enqueue(session, SYNC_TASK, source.id)
    session.flush()
    return source


def delete_source(session: Session, source_id: int, project_id: int | None = None) -> None:
    """Delete a source with its clips (their objects stay in the bucket); refused while one of
    them is in a batch or has people's annotations."""
    source = get_source(session, source_id, project_id)
    of_source = (Clip.source_id == source.id,)
    in_batch = exists().where(BatchClip.clip_id == Clip.id)
    worked = exists().where(Annotation.clip_id == Clip.id, Annotation.kind != AnnotationKind.model)
    busy = session.scalar(select(Clip.id).where(*of_source, in_batch | worked).limit(1))
    if busy is not None:
        raise Conflict(
            f"Clips of {source.url} are in batches or have annotations (clip {busy}, for one); "
            "remove them from their batches before deleting the source."
        )
    processed = select(Clip.id).where(*of_source, Clip.state != ClipState.uploaded)
    for clip_id in session.scalars(processed):  # derived media the pipeline made in our store
        delete_after_commit(session, clip_prefix(source.project_id, clip_id))
    session.delete(source)  # its clips go with it (ON DELETE CASCADE)
    session.flush()
