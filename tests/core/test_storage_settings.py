"""The media store follows STORAGE_URL: the embedded default is the local folder; browsers
get URLs for the store's public address."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import get_settings
from app.core.local_storage import LocalStorage
from app.core.s3_storage import S3Storage
from app.core.storage import bucket_store_changed, get_storage
from tests.object_store import BUCKET, SeaweedServer


def test_without_storage_url_media_stay_in_the_local_folder() -> None:
    assert isinstance(get_storage(), LocalStorage)


def test_with_an_s3_storage_url_media_go_to_the_bucket(use_object_store: SeaweedServer) -> None:
    storage = get_storage()
    assert isinstance(storage, S3Storage) and storage.bucket == BUCKET
    storage.save_stream("clips/1/2/source.mp4", io.BytesIO(b"video"))
    storage.move("clips/1/2/source.mp4", "clips/1/3/source.mp4")
    key = f"{storage.prefix}/clips/1/3/source.mp4"
    body = use_object_store.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == b"video" and not storage.exists("clips/1/2/source.mp4")
    assert storage.local_file("clips/1/3/source.mp4").read_bytes() == b"video"


def test_browsers_get_urls_signed_for_the_stores_public_address(
    use_object_store: SeaweedServer, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> None:
    """Containers reach the store by one name, browsers by another: presigned URLs (and the
    CSP's media origin) use the public one, and they work there."""
    public = use_object_store.endpoint.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT_URL", public)
    get_settings.cache_clear()
    bucket_store_changed()
    storage = get_storage()
    storage.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"moving pictures"))
    url = storage.presigned_get("clips/1/2/preview.mp4")
    assert url is not None and url.startswith(f"{public}/")
    assert httpx.get(url).content == b"moving pictures"
    policy = client.get("/login").headers["content-security-policy"]
    assert f"media-src 'self' blob: {public};" in policy
    assert f"connect-src 'self' {public};" in policy


def test_the_local_folder_keeps_media_on_the_same_origin(client: TestClient) -> None:
    policy = client.get("/login").headers["content-security-policy"]
    assert "media-src 'self' blob:;" in policy and "connect-src 'self';" in policy
