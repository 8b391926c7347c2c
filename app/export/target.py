"""A copy of a finished snapshot in a bucket prefix the admin names (``s3://bucket/prefix/``).

The copy is written with the instance's own S3 settings (the same endpoint and keys as its
media bucket), so it is a server-side copy: no archive bytes pass through this host. Beside
the archive ``<prefix>/<project>-<name>.zip`` goes ``<project>-<name>.json``, a manifest a
training job can check the archive against. Only an instance whose media are in an object
store offers it (a local one has no bucket credentials to write with). boto3 is imported only
once a target is used: it takes seconds to load, and the embedded CLI never needs it.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from app.core.config import get_settings
from app.core.errors import Invalid, StorageUnavailable
from app.core.storage import media_bucket

if TYPE_CHECKING:
    from app.core.s3_storage import S3Storage

FIELD = "target"
EXAMPLE = "s3://my-bucket/exports/"


def offered() -> bool:
    """Whether this instance can write copies to a bucket (its media are in one)."""
    return get_settings().object_store


def bucket_store() -> S3Storage:
    """The instance's media bucket, whose client writes the copies; Invalid when media are
    kept on the local disk."""
    return media_bucket(
        "Copies to a bucket need media in an object store (STORAGE_URL=s3://…); "
        "this instance keeps them on its local disk.",
        field=FIELD,
    )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def check_target(url: str) -> str:
    """``url`` as ``s3://bucket/prefix/`` once the bucket takes a tiny write (put and
    delete); Invalid, about the form's ``target`` field, saying what is wrong otherwise."""
    store = bucket_store()
    from botocore.exceptions import BotoCoreError, ClientError

    from app.core.s3_storage import Refusal, classify, parse_s3_url

    try:
        bucket, prefix = parse_s3_url(url.strip())
    except ValueError:
        raise Invalid(f"Give a bucket address such as {EXAMPLE}", field=FIELD) from None
    normal = f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"
    ours = not store.prefix or (prefix + "/").startswith(store.prefix + "/")
    if bucket == store.bucket and ours:
        raise Invalid(f"{normal} holds this instance's own media; choose another.", field=FIELD)
    probe = _join(prefix, f".cellabel-write-check-{uuid.uuid4().hex}")
    try:
        store.client.head_bucket(Bucket=bucket)
        store.client.put_object(Bucket=bucket, Key=probe, Body=b"")
        store.client.delete_object(Bucket=bucket, Key=probe)
    except ClientError as exc:
        refusal = classify(exc)
        if refusal.kind in (Refusal.NO_BUCKET, Refusal.NOT_FOUND):
            message = f"There is no bucket {bucket!r} on the object store."
        elif refusal.kind is Refusal.DENIED:
            message = f"This instance's S3 keys may not write to {normal}."
        else:
            message = f"The object store refused a test write to {normal} ({refusal.code or exc})."
        raise Invalid(message, field=FIELD) from exc
    except BotoCoreError as exc:  # an invalid bucket name, or the store not answering
        raise Invalid(f"Could not write a test object to {normal}: {exc}", field=FIELD) from exc
    return normal


def write_copy(
    target_url: str, archive_key: str, name: str, manifest: dict[str, Any]
) -> tuple[str | None, str | None]:
    """Copy the archive at ``archive_key`` (in the media store) to ``target_url`` as ``name``
    with its manifest beside it: (the copy's address, None), or (None, why it failed), which
    the snapshot records (it stays downloadable either way)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from app.core.s3_storage import parse_s3_url

    try:
        store = bucket_store()
        bucket, prefix = parse_s3_url(target_url)
        key = _join(prefix, name)
        store.copy_out(archive_key, bucket, key)
        body = json.dumps({**manifest, "archive": name}, indent=2).encode()
        store.client.put_object(
            Bucket=bucket,
            Key=_join(prefix, name.removesuffix(".zip") + ".json"),
            Body=body,
            ContentType="application/json",
        )
    except (ClientError, BotoCoreError, StorageUnavailable, Invalid, FileNotFoundError) as exc:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return None, f"The copy to {target_url} failed: {reason}"
    return f"s3://{bucket}/{key}", None
