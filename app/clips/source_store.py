"""The bucket a registered source names, with its stored keys: where a bucket clip is read.

Apart from the source service so that the clip's paths can reach a source's bucket without
importing the service that lists and syncs it."""

from __future__ import annotations

import os
from functools import lru_cache

from sqlalchemy.orm import Session

from app.clips.models import BucketSource
from app.core.config import get_settings
from app.core.errors import Invalid, NotFound
from app.core.media_cache import MediaCache
from app.core.s3_storage import S3Storage, make_s3_client, parse_s3_url
from app.core.secret_box import unseal
from app.core.storage_api import Storage


def source_url(url: str) -> tuple[str, str, str]:
    """(bucket, prefix, the address as stored ``s3://bucket/prefix/``); Invalid otherwise."""
    try:
        bucket, prefix = parse_s3_url(url.strip())
    except ValueError as exc:
        raise Invalid(
            f"{url.strip()!r} is not a bucket address: write s3://bucket/prefix/.", field="url"
        ) from exc
    if not prefix:  # Storage.iter_objects lists under a prefix, never a whole store
        raise Invalid(
            f"Name a folder in the bucket: s3://{bucket}/clips/, not the whole bucket.",
            field="url",
        )
    return bucket, prefix, f"s3://{bucket}/{prefix}/"


def bucket_storage(bucket: str, endpoint: str, region: str, key_id: str, secret: str) -> S3Storage:
    try:
        client = make_s3_client(endpoint, region, key_id, secret)
    except ValueError as exc:  # botocore refuses a malformed endpoint before any request
        raise Invalid(f"{endpoint!r} is not an endpoint URL.", field="endpoint_url") from exc
    settings = get_settings()
    return S3Storage(bucket=bucket, prefix="", client=client, cache=_cache(),
                     presigned_seconds=settings.presigned_url_seconds)  # fmt: skip


@lru_cache
def _cache() -> MediaCache:
    return MediaCache.from_settings(get_settings())


def get_source(session: Session, source_id: int, project_id: int | None = None) -> BucketSource:
    """The source (of ``project_id`` when given); NotFound otherwise."""
    source = session.get(BucketSource, source_id)
    if source is None or (project_id is not None and source.project_id != project_id):
        raise NotFound(f"No bucket source {source_id}.")
    return source


def source_storage(session: Session, source_id: int) -> Storage:
    """The bucket of a source, its keys decrypted: a clip's ``storage_key`` is read through it."""
    source = get_source(session, source_id)
    return _source_storage(source.url, source.endpoint_url, source.region,
                           source.access_key_id, source.secret_encrypted, os.getpid())  # fmt: skip


@lru_cache(maxsize=64)
def _source_storage(
    url: str, endpoint: str, region: str, key_id: str, sealed: str, pid: int
) -> S3Storage:
    # Keyed by every stored field (new keys for a source make a new client) and the process:
    # a boto3 client's connections must not cross a fork, as in core.storage.
    secret = unseal(sealed) if sealed else ""
    return bucket_storage(source_url(url)[0], endpoint, region, key_id, secret)
