"""One set of behaviours both media stores keep: a local folder and a real SeaweedFS bucket."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.core.errors import Forbidden, TooLarge
from app.core.local_storage import LocalStorage
from app.core.media_cache import MediaCache
from app.core.s3_storage import PART, S3Storage
from app.core.storage_api import Storage
from tests.object_store import BUCKET, SeaweedServer

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    server: SeaweedServer = request.getfixturevalue("object_store")
    return server.storage(MediaCache(tmp_path / "cache", 1024**3))


@pytest.fixture
def s3(object_store: SeaweedServer, tmp_path: Path) -> S3Storage:
    return object_store.storage(MediaCache(tmp_path / "cache", 1024**3))


def test_saved_bytes_read_back_whole_in_ranges_and_as_a_file(storage: Storage) -> None:
    data = os.urandom(2 * PART + 123)  # three parts in a bucket
    size, digest = storage.save_stream("clips/1/2/source.mp4", io.BytesIO(data))
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert storage.exists("clips/1/2/source.mp4")
    info = storage.stat("clips/1/2/source.mp4")
    assert info is not None and info.size == len(data) and info.etag
    assert info.key == "clips/1/2/source.mp4" and info.modified.utcoffset() is not None
    with storage.open("clips/1/2/source.mp4") as fh:
        assert fh.read(10) == data[:10]
        assert fh.read() == data[10:]
    assert storage.read_range("clips/1/2/source.mp4", PART - 5, 10) == data[PART - 5 : PART + 5]
    assert storage.read_range("clips/1/2/source.mp4", len(data) - 3, 10) == data[-3:]
    assert storage.read_range("clips/1/2/source.mp4", len(data) + 5, 10) == b""
    assert storage.local_file("clips/1/2/source.mp4").read_bytes() == data


def test_a_missing_object_is_not_found(storage: Storage) -> None:
    assert not storage.exists("clips/1/9/source.mp4")
    assert storage.stat("clips/1/9/source.mp4") is None
    with pytest.raises(FileNotFoundError), storage.open("clips/1/9/source.mp4"):
        pass
    with pytest.raises(FileNotFoundError):
        storage.local_file("clips/1/9/source.mp4")


def test_saving_again_replaces_the_object(storage: Storage) -> None:
    storage.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"first"))
    before = storage.stat("clips/1/2/preview.mp4")
    storage.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"second!"))
    after = storage.stat("clips/1/2/preview.mp4")
    assert before is not None and after is not None and before.etag != after.etag
    with storage.open("clips/1/2/preview.mp4") as fh:
        assert fh.read() == b"second!"


@pytest.mark.parametrize("size", [100, PART + 100])
def test_too_large_stores_nothing(storage: Storage, size: int) -> None:
    with pytest.raises(TooLarge):
        storage.save_stream("uploads/big.mp4", io.BytesIO(b"x" * size), max_bytes=size - 1)
    assert not storage.exists("uploads/big.mp4")
    assert list(storage.iter_objects("uploads")) == []


def test_an_aborted_multipart_write_leaves_no_upload_behind(
    s3: S3Storage, object_store: SeaweedServer
) -> None:
    with pytest.raises(TooLarge):
        s3.save_stream("uploads/big.mp4", io.BytesIO(b"x" * (PART + 1)), max_bytes=PART)
    pending = object_store.client().list_multipart_uploads(Bucket=BUCKET, Prefix=s3.prefix)
    assert pending.get("Uploads", []) == []


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/etc/passwd", "clips/../../x", "clips/1/\x00x", "", "a/../../b"]
)
def test_keys_cannot_escape_the_store(storage: Storage, key: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(Forbidden):
        storage.save_stream(key, io.BytesIO(b"x"))
    with pytest.raises(Forbidden):
        storage.stat(key)
    with pytest.raises(Forbidden), storage.open(key):
        pass
    with pytest.raises(Forbidden):
        storage.local_file(key)
    with pytest.raises(Forbidden):
        storage.publish(key, tmp_path / "file")
    with pytest.raises(Forbidden):
        storage.delete_tree(key)
    with pytest.raises(Forbidden):
        list(storage.iter_objects(key))


def test_publish_moves_a_built_file_in(storage: Storage) -> None:
    with storage.scratch() as folder:
        built = folder / "preview.mp4"
        built.write_bytes(b"preview bytes")
        storage.publish("clips/1/2/preview.mp4", built)
        assert not built.exists()
    assert not folder.exists()
    assert storage.local_file("clips/1/2/preview.mp4").read_bytes() == b"preview bytes"
    with storage.open("clips/1/2/preview.mp4") as fh:
        assert fh.read() == b"preview bytes"


def test_publish_tree_replaces_the_tree_and_writes_last_ones_last(storage: Storage) -> None:
    storage.save_stream("clips/1/2/frames/stale.bin", io.BytesIO(b"old"))
    storage.save_stream("clips/1/2/frames/0.bin", io.BytesIO(b"old 0"))
    with storage.scratch() as folder:
        (folder / "sub").mkdir()
        for name in ("0.bin", "1.bin", "sub/2.bin", "index.json"):
            (folder / name).write_text(f"new {name}")
        storage.publish_tree("clips/1/2/frames", folder, last=["index.json"])
    found = {info.key: info for info in storage.iter_objects("clips/1/2/frames")}
    names = ["0.bin", "1.bin", "index.json", "sub/2.bin"]
    assert sorted(found) == [f"clips/1/2/frames/{name}" for name in names]
    with storage.open("clips/1/2/frames/0.bin") as fh:
        assert fh.read() == b"new 0.bin"
    index = found["clips/1/2/frames/index.json"].modified
    assert all(info.modified <= index for info in found.values())


def test_delete_tree_removes_a_tree_or_an_object_and_nothing_beside(storage: Storage) -> None:
    for key in ("clips/1/1/a.bin", "clips/1/1/deep/b.bin", "clips/1/10/a.bin", "clips/1/x.bin"):
        storage.save_stream(key, io.BytesIO(key.encode()))
    storage.delete_tree("clips/1/1")
    storage.delete_tree("clips/1/x.bin")
    storage.delete_tree("clips/1/404")  # missing: no error
    assert [info.key for info in storage.iter_objects("clips")] == ["clips/1/10/a.bin"]
    with pytest.raises(FileNotFoundError):
        storage.local_file("clips/1/1/a.bin")


def test_iter_objects_pages_in_key_order_from_after(storage: Storage) -> None:
    with storage.scratch() as folder:
        for n in range(1005):  # more than one list page (1000) of a bucket
            (folder / f"{n:05d}.bin").write_bytes(b"x")
        storage.publish_tree("clips/7/objects", folder)
    storage.save_stream("clips/7/objectsbeside.bin", io.BytesIO(b"not under the prefix"))
    keys = [info.key for info in storage.iter_objects("clips/7/objects")]
    assert keys == [f"clips/7/objects/{n:05d}.bin" for n in range(1005)]
    rest = [i.key for i in storage.iter_objects("clips/7/objects", after=keys[997])]
    assert rest == keys[998:]


def test_presigned_get_downloads_the_bytes_under_the_name(s3: S3Storage) -> None:
    s3.save_stream("exports/3/export.zip", io.BytesIO(b"zip bytes"))
    url = s3.presigned_get("exports/3/export.zip", filename="épisode 3.zip")
    assert url is not None
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"zip bytes"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "%C3%A9pisode%203.zip" in disposition


def test_the_local_folder_has_no_presigned_urls(tmp_path: Path) -> None:
    LocalStorage(tmp_path).save_stream("exports/3/export.zip", io.BytesIO(b"zip"))
    assert LocalStorage(tmp_path).presigned_get("exports/3/export.zip") is None
    assert LocalStorage(tmp_path).object_url("exports/3/export.zip") is None  # MEDIA_ROOT's


def test_an_objects_url_is_what_other_s3_clients_read_it_by(s3: S3Storage) -> None:
    s3.save_stream("clips/1/2/source.mp4", io.BytesIO(b"video bytes"))
    url = s3.object_url("clips/1/2/source.mp4")
    assert url is not None and url.startswith(f"s3://{s3.bucket}/")
    bucket, key = url.removeprefix("s3://").split("/", 1)
    assert s3.client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"video bytes"


def test_a_browser_multipart_upload_resumes_from_the_listed_parts(s3: S3Storage) -> None:
    first, second = os.urandom(5 * 1024 * 1024), b"the rest"
    upload = s3.start_multipart("uploads/u1/clip.mp4", "video/mp4")
    put = httpx.put(s3.presign_part("uploads/u1/clip.mp4", upload, 1), content=first)
    assert put.status_code == 200
    # The page was reloaded: what the store has says where to go on.
    assert [(n, size) for n, _, size in s3.list_parts("uploads/u1/clip.mp4", upload)] == [
        (1, len(first))
    ]
    httpx.put(s3.presign_part("uploads/u1/clip.mp4", upload, 2), content=second)
    parts = [(n, etag) for n, etag, _ in s3.list_parts("uploads/u1/clip.mp4", upload)]
    s3.complete_multipart("uploads/u1/clip.mp4", upload, parts)
    with s3.open("uploads/u1/clip.mp4") as fh:
        assert fh.read() == first + second
    assert s3.stat("uploads/u1/clip.mp4") is not None


def test_an_aborted_browser_upload_leaves_nothing(s3: S3Storage) -> None:
    upload = s3.start_multipart("uploads/u2/clip.mp4", "video/mp4")
    httpx.put(s3.presign_part("uploads/u2/clip.mp4", upload, 1), content=b"part")
    s3.abort_multipart("uploads/u2/clip.mp4", upload)
    assert not s3.exists("uploads/u2/clip.mp4")
    assert list(s3.iter_objects("uploads")) == []


def test_cors_lets_the_app_origin_put_parts_and_read_the_etag(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    bucket = object_store.make_bucket("cellabel-cors-test")
    s3 = object_store.storage(MediaCache(tmp_path, 1024**2), bucket=bucket)
    s3.ensure_cors([ORIGIN])
    s3.ensure_cors([ORIGIN])  # again: one rule of ours, not two
    assert len(object_store.client().get_bucket_cors(Bucket=bucket)["CORSRules"]) == 1
    upload = s3.start_multipart("uploads/u3/clip.mp4", "video/mp4")
    url = s3.presign_part("uploads/u3/clip.mp4", upload, 1)
    asked = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = httpx.options(url, headers={"Origin": ORIGIN, **asked})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in allowed.headers["access-control-expose-headers"]
    refused = httpx.options(url, headers={"Origin": "http://elsewhere.example", **asked})
    assert "access-control-allow-origin" not in refused.headers


def test_from_settings_uses_storage_url_and_the_s3_settings(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    env = object_store.settings_env("from-settings")
    settings = Settings(
        **{name.lower(): value for name, value in env.items()},
        storage_cache_dir=tmp_path,
        presigned_url_seconds=60,
    )
    s3 = S3Storage.from_settings(settings)
    s3.save_stream("clips/1/1/source.mp4", io.BytesIO(b"via settings"))
    body = object_store.client().get_object(
        Bucket=BUCKET, Key="from-settings/clips/1/1/source.mp4"
    )["Body"]
    assert body.read() == b"via settings"
    assert "X-Amz-Expires=60" in (s3.presigned_get("clips/1/1/source.mp4") or "")
    assert s3.local_file("clips/1/1/source.mp4").is_relative_to(tmp_path)
