"""The bounded per-host cache behind S3Storage.local_file, against a real SeaweedFS."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import StorageUnavailable
from app.core.media_cache import ORPHAN_AFTER, MediaCache
from app.core.s3_storage import S3Storage, make_s3_client
from tests.object_store import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, SeaweedServer

KB = 1000


def _fill(storage: S3Storage, *names: str, size: int = KB) -> None:
    for name in names:
        storage.save_stream(f"clips/1/{name}", io.BytesIO((name * size).encode()))


def test_eviction_keeps_the_total_under_the_limit_and_drops_least_recently_used(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path, 3 * KB, keep_recent=0))
    _fill(storage, "a", "b", "c", "d")
    paths = {}
    for name in ("a", "b", "c", "a", "d"):  # "a" used again after "b" and "c"
        paths[name] = storage.local_file(f"clips/1/{name}")
        time.sleep(0.05)  # file times move in kernel ticks
    assert [name for name, path in sorted(paths.items()) if path.exists()] == ["a", "d"]
    assert storage.cache.usage() == 2 * KB <= 3 * KB
    assert storage.local_file("clips/1/b").read_text() == "b" * KB  # fetched again


def test_files_used_a_moment_ago_are_never_evicted(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path, int(1.5 * KB), keep_recent=60))
    _fill(storage, "a", "b")
    first, second = storage.local_file("clips/1/a"), storage.local_file("clips/1/b")
    assert first.exists() and second.exists()  # over the limit until they age


def _local_file_counting_gets(
    endpoint: str, cache_root: str, prefix: str, key: str, log: str, barrier: Any
) -> None:
    """One worker process: ask for ``key`` and note each GET it sends to the store."""
    client = make_s3_client(endpoint, REGION, ACCESS_KEY, SECRET_KEY)
    cache = MediaCache(Path(cache_root), 1024**3)
    storage = S3Storage(bucket=BUCKET, prefix=prefix, client=client, cache=cache)

    def note_get(**_: Any) -> None:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")

    storage.client.meta.events.register("before-call.s3.GetObject", note_get)
    barrier.wait()
    path = storage.local_file(key)
    with open(log + ".paths", "a") as fh:
        fh.write(f"{path} {hashlib.sha256(path.read_bytes()).hexdigest()}\n")


def test_two_processes_asking_for_one_object_download_it_once(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path / "cache", 1024**3))
    data = os.urandom(24 * 1024 * 1024)
    storage.save_stream("clips/1/2/source.mp4", io.BytesIO(data))
    log = tmp_path / "gets.log"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    args = (
        object_store.endpoint,
        str(tmp_path / "cache"),
        storage.prefix,
        "clips/1/2/source.mp4",
        str(log),
        barrier,
    )
    workers = [context.Process(target=_local_file_counting_gets, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(log.read_text().split()) == 1
    seen = set(Path(str(log) + ".paths").read_text().splitlines())
    assert len(seen) == 1 and seen.pop().endswith(hashlib.sha256(data).hexdigest())


def test_an_object_replaced_on_another_host_is_fetched_again_after_revalidation(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    here = object_store.storage(MediaCache(tmp_path / "here", 1024**3, revalidate_after=1))
    there = object_store.storage(MediaCache(tmp_path / "there", 1024**3), prefix=here.prefix)
    here.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"first run"))
    assert here.local_file("clips/1/2/preview.mp4").read_bytes() == b"first run"
    there.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"second run"))
    time.sleep(1.1)
    assert here.local_file("clips/1/2/preview.mp4").read_bytes() == b"second run"
    there.delete_tree("clips/1/2")
    time.sleep(1.1)
    with pytest.raises(FileNotFoundError):
        here.local_file("clips/1/2/preview.mp4")


def test_publishing_on_this_host_is_seen_here_at_once(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path, 1024**3))
    with storage.scratch() as folder:
        (folder / "0.bin").write_bytes(b"old chunk")
        storage.publish_tree("clips/1/2/frames", folder)
    assert storage.local_file("clips/1/2/frames/0.bin").read_bytes() == b"old chunk"
    with storage.scratch() as folder:
        (folder / "0.bin").write_bytes(b"new chunk")
        storage.publish_tree("clips/1/2/frames", folder)
    assert storage.local_file("clips/1/2/frames/0.bin").read_bytes() == b"new chunk"
    with storage.scratch() as folder:
        (folder / "preview.mp4").write_bytes(b"preview")
        storage.publish("clips/1/2/preview.mp4", folder / "preview.mp4")
    assert storage.local_file("clips/1/2/preview.mp4").read_bytes() == b"preview"


@pytest.mark.timeout(180)
def test_a_stopped_store_is_a_clear_retryable_error(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path, 1024**3))
    storage.save_stream("clips/1/2/source.mp4", io.BytesIO(b"source"))
    object_store.stop()
    try:
        with pytest.raises(StorageUnavailable) as raised:
            storage.local_file("clips/1/2/source.mp4")
        assert raised.value.status_code == 503
        assert object_store.endpoint in raised.value.message
        assert "did not answer" in raised.value.message
        with pytest.raises(StorageUnavailable):
            storage.stat("clips/1/2/source.mp4")
        with pytest.raises(StorageUnavailable), storage.open("clips/1/2/source.mp4"):
            pass
        with pytest.raises(StorageUnavailable):
            storage.save_stream("clips/1/2/preview.mp4", io.BytesIO(b"preview"))
        with pytest.raises(StorageUnavailable):
            list(storage.iter_objects("clips/1"))
    finally:
        object_store.start()
    assert storage.local_file("clips/1/2/source.mp4").read_bytes() == b"source"


def test_what_killed_processes_left_is_cleared_when_space_is_needed(
    object_store: SeaweedServer, tmp_path: Path
) -> None:
    storage = object_store.storage(MediaCache(tmp_path, KB, keep_recent=0))
    partial = tmp_path / "tmp" / "download-of-a-killed-worker"
    partial.write_bytes(b"x" * KB)
    with storage.scratch() as live:
        abandoned = tmp_path / "scratch" / "step-of-a-killed-worker"
        abandoned.mkdir()
        day_ago = time.time() - ORPHAN_AFTER - 60
        for path in (partial, abandoned):
            os.utime(path, (day_ago, day_ago))
        _fill(storage, "a", "b")
        storage.local_file("clips/1/a")
        storage.local_file("clips/1/b")  # over the limit: an eviction pass
        assert not partial.exists() and not abandoned.exists()
        assert live.exists()


def test_a_cache_opened_after_a_killed_build_removes_its_scratch_and_downloads(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cache"
    # A process that dies (no clean-up runs) inside a build and a download.
    dying = textwrap.dedent(f"""
        import os, tempfile
        from pathlib import Path
        from app.core.media_cache import MediaCache
        cache = MediaCache(Path({str(root)!r}), 1024**2)
        with cache.scratch() as folder:
            (folder / "chunk_0000.bin").write_bytes(b"x" * 1000)
            fd, _ = tempfile.mkstemp(dir=cache.root / "tmp", prefix=cache._owner)
            os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", dying], check=True, cwd=Path(__file__).parents[2])
    assert len(list((root / "scratch").iterdir())) == 1
    assert len(list((root / "tmp").iterdir())) == 1
    another_host = root / "scratch" / "elsewhere~1~abc"  # a folder shared with another host
    another_host.mkdir()

    cache = MediaCache(root, 1024**2)
    with cache.scratch() as mine:
        MediaCache(root, 1024**2)  # opened again meanwhile, as by another worker
        assert mine.is_dir()  # a running build keeps its folder
        assert sorted((root / "scratch").iterdir()) == sorted([mine, another_host])
    assert list((root / "tmp").iterdir()) == []
