"""Multipart uploads a browser sends straight to the bucket: started, presigned part by part,
listed (what a resumed browser skips), completed or aborted, then copied inside the store.

The method names are the ones `app/core/s3_storage.py` (S3Storage) offers; this small class
stands in for it on the bucket-upload branch until that module lands, then goes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from app.core.config import get_settings
from app.core.storage_api import check_key


class MultipartBucket:
    """The bucket and key prefix of ``STORAGE_URL`` (``s3://bucket/prefix``)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        rel = str(check_key(key))
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def start_multipart(self, key: str, content_type: str) -> str:
        made = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._key(key), ContentType=content_type
        )
        return str(made["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        seconds = get_settings().presigned_url_seconds
        return str(self.client.generate_presigned_url("upload_part", params, ExpiresIn=seconds))

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str, int]]:
        """(number, etag, size) of each part in the store, once per number (a part sent twice
        is listed twice by some stores: the last one counts)."""
        parts: dict[int, tuple[int, str, int]] = {}
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
        )
        for page in pages:
            for part in page.get("Parts", []):
                number = int(part["PartNumber"])
                parts[number] = (number, str(part["ETag"]), int(part["Size"]))
        return sorted(parts.values())

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self._key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
        )

    def copy(self, source: str, target: str) -> None:
        """Copy inside the store (CopyObject, multipart copy past 5 GB): no bytes through here."""
        self.client.copy(
            {"Bucket": self.bucket, "Key": self._key(source)}, self.bucket, self._key(target)
        )

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def origin(self) -> str:
        """Scheme, host and port browsers send parts to (for the page's connect-src)."""
        url = urlsplit(self.client.meta.endpoint_url)
        return f"{url.scheme}://{url.netloc}"


@lru_cache
def multipart_bucket(storage_url: str) -> MultipartBucket:
    """The bucket of ``storage_url`` with the endpoint, region and keys from settings (or the
    standard AWS variables when those are empty)."""
    settings = get_settings()
    where = urlsplit(storage_url)
    secret = settings.s3_secret_access_key
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    return MultipartBucket(client, where.netloc, where.path)
