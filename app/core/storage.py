"""The media store this instance uses, chosen by ``STORAGE_URL``; see storage_api.Storage.

Empty (the embedded default) is the folder MEDIA_ROOT; ``s3://bucket/prefix`` an S3-compatible
bucket. Layout (docs/media-layout.md): ``clips/<project>/<clip>/source.<ext>`` plus the clip's
derived media beside it, ``uploads/`` for partial uploads, ``exports/``.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import TYPE_CHECKING, cast

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import Invalid, StorageUnavailable
from app.core.jobs import enqueue
from app.core.local_storage import LocalStorage
from app.core.storage_api import Storage

if TYPE_CHECKING:
    from app.core.s3_storage import S3Storage

log = logging.getLogger(__name__)


def get_storage() -> Storage:
    settings = get_settings()
    if settings.object_store:
        return _bucket_store(settings.storage_url, settings.s3_endpoint_url, os.getpid())
    root = settings.effective_media_root
    root.mkdir(parents=True, exist_ok=True)
    return LocalStorage(root)


def media_bucket(refusal: str, *, field: str | None = None) -> S3Storage:
    """The instance's media bucket, for what only a bucket does (browser uploads, copies to
    another bucket, its origin in the CSP); Invalid(``refusal``) with media on this disk."""
    if not get_settings().object_store:
        raise Invalid(refusal, field=field)
    return cast("S3Storage", get_storage())


@cache
def _bucket_store(url: str, endpoint: str, pid: int) -> Storage:
    """One client and cache per process and store: boto3 clients are thread-safe and slow to
    make, but their connections must not cross a fork (Celery's prefork children). boto3 is
    imported only where a bucket is used."""
    from app.core.s3_storage import S3Storage

    return S3Storage.from_settings(get_settings())


def bucket_store_changed() -> None:
    """Forget the bucket clients made so far (settings changed: tests, a reloaded config)."""
    _bucket_store.cache_clear()


_DOOMED_KEY = "cellabel_doomed_media"
DELETE_MEDIA_TASK = "cellabel.media.delete_tree"


def delete_after_commit(session: Session, key: str) -> None:
    """Remove media ``key`` once ``session`` commits (kept if it rolls back)."""
    session.info.setdefault(_DOOMED_KEY, []).append(key)


@event.listens_for(Session, "after_commit")
def _delete_doomed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a released SAVEPOINT: the outer transaction may still roll back
    left = []
    for key in session.info.pop(_DOOMED_KEY, []):
        try:
            get_storage().delete_tree(key)
        except StorageUnavailable as exc:
            log.warning("media %s stay until the store answers: %s", key, exc.message)
            left.append(key)
    if left:
        # The rows are gone already: the deletion is not failed for the store; a worker
        # removes the media later (DELETE_MEDIA_TASK, retried until the store answers).
        with session_scope() as later:
            for key in left:
                enqueue(later, DELETE_MEDIA_TASK, key)


@event.listens_for(Session, "after_rollback")
def _keep_doomed(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_DOOMED_KEY, None)


def project_prefix(project_id: int) -> str:
    """Where a project's clips' media live (one folder a clip below it)."""
    return f"clips/{project_id}"


def clip_prefix(project_id: int, clip_id: int) -> str:
    return f"{project_prefix(project_id)}/{clip_id}"
