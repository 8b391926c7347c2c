"""Media in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph RGW, R2), through boto3.

Keys (storage_api.check_key) are joined under the bucket prefix. Nothing is held whole in
memory: reads stream, writes go in 8 MiB multipart parts. Tools that need a path get a copy in
this host's bounded `MediaCache`. A store that does not answer raises `StorageUnavailable`
(retryable, HTTP 503); a missing object FileNotFoundError, as with the local folder.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from app.core.config import Settings
from app.core.errors import StorageUnavailable, TooLarge
from app.core.media_cache import MediaCache
from app.core.responses import attachment
from app.core.storage_api import ObjectInfo, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef, ObjectIdentifierTypeDef

PART = 8 * 1024 * 1024
DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
UPLOAD_THREADS = 8
_TRANSFER = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
CORS_RULE_ID = "cellabel-browser-uploads"


class Refusal(Enum):
    """What an S3-compatible store's refusal means, whichever store (AWS, MinIO, SeaweedFS,
    R2) and call (a HEAD answers with a bare status, the others with named codes) gave it."""

    NO_BUCKET = "no bucket"
    NOT_FOUND = "not found"  # an object, or whatever a HEAD asked for
    NO_UPLOAD = "no upload"  # a multipart upload completed or aborted
    DENIED = "denied"  # keys unknown, wrong, or not allowed this
    UNAVAILABLE = "unavailable"  # the store failing (5xx): retryable
    OTHER = "other"


_REFUSALS = {
    "NoSuchBucket": Refusal.NO_BUCKET,
    "404": Refusal.NOT_FOUND, "NotFound": Refusal.NOT_FOUND, "NoSuchKey": Refusal.NOT_FOUND,
    "NoSuchUpload": Refusal.NO_UPLOAD,
    **dict.fromkeys(("403", "AccessDenied", "AllAccessDisabled", "Forbidden",
                     "InvalidAccessKeyId", "SignatureDoesNotMatch"), Refusal.DENIED),
}  # fmt: skip


@dataclass(frozen=True)
class StoreRefusal:
    """A ClientError classified: its kind and the store's code (for messages; may be "")."""

    kind: Refusal
    code: str


def classify(exc: ClientError) -> StoreRefusal:
    """The one reading of a botocore ClientError that every caller words for its users."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    kind = _REFUSALS.get(code, Refusal.OTHER)
    if kind is Refusal.OTHER and _status(exc) >= 500:
        kind = Refusal.UNAVAILABLE
    return StoreRefusal(kind, code)


def make_s3_client(
    endpoint_url: str = "",
    region: str = "",
    access_key_id: str = "",
    secret_access_key: str = "",
) -> S3Client:
    """A client with short timeouts and standard retries; empty keys leave boto3's standard
    chain (AWS_* variables, profiles, instance roles) to find credentials, and an endpoint
    (a self-hosted store) gets path-style addressing."""
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as (bucket, prefix without slashes at either end)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"Not an s3://bucket/prefix address: {url!r}")
    return parts.netloc, parts.path.strip("/")


class S3Storage:
    """`app.core.storage_api.Storage` on ``s3://bucket/prefix``, plus the calls a browser's
    presigned multipart upload needs. ``cache`` may be shared by several buckets."""

    on_this_disk = False

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        client: S3Client,
        cache: MediaCache,
        presigned_seconds: int = 900,
        signer: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.signer = signer or client  # presigns URLs for browsers (its endpoint is theirs)
        self.cache = cache
        self.presigned_seconds = presigned_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """The instance's media store: STORAGE_URL, S3_* settings and the host cache; URLs for
        browsers signed for S3_PUBLIC_ENDPOINT_URL when it is set."""
        bucket, prefix = parse_s3_url(settings.storage_url)
        secret = settings.s3_secret_access_key
        keys = (
            settings.s3_region,
            settings.s3_access_key_id,
            secret.get_secret_value() if secret is not None else "",
        )
        public = settings.s3_public_endpoint_url
        cache = MediaCache.from_settings(settings)
        return cls(
            bucket=bucket,
            prefix=prefix,
            client=make_s3_client(settings.s3_endpoint_url, *keys),
            cache=cache,
            presigned_seconds=settings.presigned_url_seconds,
            signer=make_s3_client(public, *keys) if public else None,
        )

    # -- keys and errors ------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The object's key in the bucket (refuses keys that could leave the prefix)."""
        rel = check_key(key).as_posix()
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _cache_key(self, key: str) -> str:
        return f"{self.bucket}/{self.full_key(key)}"

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    @contextmanager
    def _errors(self, key: str = "") -> Iterator[None]:
        """botocore's failures as ours: StorageUnavailable or FileNotFoundError."""
        try:
            yield
        except (BotoConnectionError, HTTPClientError) as exc:
            self._unavailable(exc)
        except ClientError as exc:
            kind = classify(exc).kind
            if kind is Refusal.NOT_FOUND:
                raise FileNotFoundError(key) from exc
            if kind is Refusal.UNAVAILABLE:
                self._unavailable(exc)
            raise
        except S3UploadFailedError as exc:
            # boto3's managed upload wraps the part's ClientError (a store coming back up
            # answers 5xx until its volumes are ready): the same outage as above.
            cause = exc.__context__
            if isinstance(cause, ClientError) and classify(cause).kind is Refusal.UNAVAILABLE:
                self._unavailable(exc)
            raise

    def _unavailable(self, exc: Exception) -> NoReturn:
        raise StorageUnavailable(
            f"The object store at {self.client.meta.endpoint_url} (bucket {self.bucket}) "
            f"did not answer ({exc})."
        ) from exc

    # -- reading --------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors(key):
                head = self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            modified=head["LastModified"].astimezone(UTC),
        )

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))["Body"]
        with io.BufferedReader(_BodyReader(body, self._errors), PART) as reader:
            yield reader

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with self._errors(key):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self.full_key(key),
                    Range=f"bytes={start}-{start + length - 1}",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # past the end, as pread says
                raise
            return response["Body"].read()

    def local_file(self, key: str) -> Path:
        def fetch(path: Path) -> str:
            """One GET streamed to ``path``: the ETag is that of the bytes written."""
            with self._errors(key):
                got = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
            body = io.BufferedReader(_BodyReader(got["Body"], self._errors), PART)
            with body, path.open("wb") as out:
                shutil.copyfileobj(body, out, PART)
            return got["ETag"].strip('"')

        def etag() -> str:
            info = self.stat(key)
            if info is None:
                raise FileNotFoundError(key)
            return info.etag

        return self.cache.get(self._cache_key(key), fetch, etag)

    def iter_objects(self, prefix: str, *, after: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.full_key(prefix) + "/",
            StartAfter=self.full_key(after) if after else "",
        )
        with self._errors(prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=self._relative(item["Key"]),
                        size=item["Size"],
                        etag=item["ETag"].strip('"'),
                        modified=item["LastModified"].astimezone(UTC),
                    )

    def object_url(self, key: str) -> str | None:
        return f"s3://{self.bucket}/{self.full_key(key)}"

    def presigned_get(self, key: str, *, filename: str | None = None) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.full_key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = attachment(filename)["Content-Disposition"]
        return self.signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presigned_seconds
        )

    # -- writing --------------------------------------------------------------------------

    def save_stream(
        self, key: str, stream: BinaryIO, *, max_bytes: int | None = None
    ) -> tuple[int, str]:
        """One PUT when the stream fits in a part, else a multipart upload; aborted (nothing
        stored) on any failure, TooLarge included."""
        full = self.full_key(key)
        digest = hashlib.sha256()
        size = 0

        def next_part() -> bytes:
            nonlocal size
            part = _read_full(stream, PART)
            size += len(part)
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(f"The file is larger than the limit of {max_bytes:,} bytes.")
            digest.update(part)
            return part

        first = next_part()
        with self._errors(key):
            if len(first) < PART:
                self.client.put_object(Bucket=self.bucket, Key=full, Body=first)
                return size, digest.hexdigest()
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)[
                "UploadId"
            ]
            try:
                parts: list[tuple[int, str]] = []
                part = first
                while part:
                    number = len(parts) + 1
                    etag = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                    )["ETag"]
                    parts.append((number, etag))
                    part = next_part()
                self.complete_multipart(key, upload_id, parts)
            except BaseException:
                self.abort_multipart(key, upload_id)
                raise
        return size, digest.hexdigest()

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """In the cache's folder, so `publish` adopts the built file with a rename."""
        with self.cache.scratch() as folder:
            yield folder

    def publish(self, key: str, path: Path) -> None:
        """Upload (multipart when large), then keep the file as this host's cached copy."""
        self._upload(path, key)
        info = self.stat(key)
        if info is None:
            raise FileNotFoundError(key)
        self.cache.put(self._cache_key(key), path, info.etag)

    def publish_tree(self, prefix: str, folder: Path, *, last: Sequence[str] = ()) -> None:
        """Upload every file, ``last`` after the rest, then remove what the new tree lacks.
        The old ``last`` objects go first: a reader waiting for the index never pairs the old
        one with new files (the local folder swaps the tree whole instead)."""
        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        then = [name for name in last if name in names]
        first = [name for name in names if name not in then]
        self._delete([self.full_key(f"{prefix}/{name}") for name in last])
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for batch in (first, then):
                list(pool.map(lambda name: self._upload(folder / name, f"{prefix}/{name}"), batch))
        new = {f"{prefix}/{name}" for name in names}
        self._delete([self.full_key(i.key) for i in self.iter_objects(prefix) if i.key not in new])
        self.cache.invalidate(self._cache_key(prefix))

    def move(self, source: str, target: str) -> None:
        """A server-side `copy`, then the source deleted."""
        self.copy(source, target)
        self._delete([self.full_key(source)])

    def copy_out(self, key: str, bucket: str, target_key: str) -> None:
        """A managed server-side copy of ``key`` to ``target_key`` in ``bucket`` (any bucket
        this store's credentials reach, this one outside our prefix included)."""
        with self._errors(key):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self.full_key(key)},
                bucket,
                target_key,
                Config=_TRANSFER,
            )

    def delete_tree(self, prefix: str) -> None:
        under = [self.full_key(info.key) for info in self.iter_objects(prefix)]
        self._delete([self.full_key(prefix), *under])
        self.cache.invalidate(self._cache_key(prefix))

    def _upload(self, path: Path, key: str) -> None:
        with self._errors(key):
            self.client.upload_file(str(path), self.bucket, self.full_key(key), Config=_TRANSFER)

    def _delete(self, full: Sequence[str]) -> None:
        """Delete these bucket keys, 1000 per call (missing ones are no error)."""
        for start in range(0, len(full), DELETE_BATCH):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": k} for k in full[start : start + DELETE_BATCH]
            ]
            with self._errors():
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if failed := answer.get("Errors"):
                first = failed[0]
                raise OSError(
                    f"The object store kept {len(failed)} objects it was asked to delete, "
                    f"e.g. {first.get('Key')}: {first.get('Message')}"
                )

    # -- browser multipart uploads (presigned parts) --------------------------------------

    def start_multipart(self, key: str, content_type: str) -> str:
        """A new multipart upload of ``key``; its upload id."""
        with self._errors(key):
            return self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.full_key(key), ContentType=content_type
            )["UploadId"]

    def presign_part(self, key: str, upload_id: str, part_number: int) -> str:
        """A URL the browser PUTs part ``part_number`` (1..10000) to; the answer's ETag header
        is what `complete_multipart` needs."""
        return self.signer.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self.full_key(key),
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=self.presigned_seconds,
        )

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str, int]]:
        """The parts the store holds so far (number, ETag, size), for resuming an upload."""
        paginator = self.client.get_paginator("list_parts")
        found: list[tuple[int, str, int]] = []
        with self._errors(key):
            for page in paginator.paginate(
                Bucket=self.bucket, Key=self.full_key(key), UploadId=upload_id
            ):
                found += [(p["PartNumber"], p["ETag"], p["Size"]) for p in page.get("Parts", [])]
        return found

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        with self._errors(key):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.full_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            )
        self.cache.invalidate(self._cache_key(key))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with self._errors(key):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.full_key(key), UploadId=upload_id
            )

    def copy(self, source: str, target: str) -> None:
        """Copy ``source`` to ``target`` inside the store (CopyObject, a multipart copy past
        5 GB): no bytes pass through this host."""
        with self._errors(source):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self.full_key(source)},
                self.bucket,
                self.full_key(target),
                Config=_TRANSFER,
            )
        self.cache.invalidate(self._cache_key(target))

    def browser_origin(self) -> str:
        """Where browsers reach the bucket (scheme, host, port of its presigned URLs): what a
        page's Content-Security-Policy must let it connect to."""
        url = urlsplit(self.signer.generate_presigned_url("get_object", Params={
            "Bucket": self.bucket, "Key": self.full_key("origin")}))  # fmt: skip
        return f"{url.scheme}://{url.netloc}"

    def ensure_cors(self, origins: list[str]) -> None:
        """Let pages from ``origins`` PUT parts and GET objects and read the ETag header, in
        the bucket's CORS rules (our rule, ``CORS_RULE_ID``, replaced; others kept). AWS S3
        and R2 refuse cross-origin PUTs without one; SeaweedFS allows every origin until a
        bucket has rules; MinIO has no bucket CORS (NotImplemented: left as it is)."""
        with self._errors():
            try:
                rules = self.client.get_bucket_cors(Bucket=self.bucket)["CORSRules"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchCORSConfiguration":
                    raise
                rules = []
            ours: CORSRuleTypeDef = {
                "ID": CORS_RULE_ID,
                "AllowedOrigins": origins,
                "AllowedMethods": ["GET", "PUT", "HEAD"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
            kept = [rule for rule in rules if rule.get("ID") != CORS_RULE_ID]
            try:
                self.client.put_bucket_cors(
                    Bucket=self.bucket, CORSConfiguration={"CORSRules": [*kept, ours]}
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotImplemented":
                    raise


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: short only at the end (a socket's read may return less)."""
    chunks: list[bytes] = []
    wanted = size
    while wanted and (chunk := stream.read(wanted)):
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


class _BodyReader(io.RawIOBase):
    """A response body as a raw stream, so io.BufferedReader reads it in chunks; a connection
    lost mid-read is StorageUnavailable."""

    def __init__(self, body: Any, errors: Callable[[], AbstractContextManager[None]]) -> None:
        self._body = body
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._errors():
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()
