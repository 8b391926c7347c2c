"""The media store follows STORAGE_URL: the embedded default is the local folder."""

from __future__ import annotations

import io

from app.core.local_storage import LocalStorage
from app.core.s3_storage import S3Storage
from app.core.storage import get_storage
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
