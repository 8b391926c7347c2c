"""Workers as separate hosts on one bucket: for the object-store pipeline and outage tests.

Each `BucketHost` is a `celery worker` subprocess with the media settings of this test's bucket
prefix (``use_object_store``) and its own MEDIA_ROOT, DATA_DIR and bounded STORAGE_CACHE_DIR,
so nothing can pass from one to the other through a disk. The broker is a private
redis-server (``private_redis``): the session's `celery_worker` (on the shared test Redis
database, with local media settings) never sees these jobs, and ours never see its.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from app.clips.models import Clip, ClipState
from app.core.config import get_settings
from app.core.db import session_scope
from app.pipeline.models import Job, JobState
from tests.object_store import SeaweedServer
from tests.reliability.conftest import (
    PrivateRedis,
    WorkerPool,
    WorkerProcess,
    subprocess_env,
    wait_for,
)

SETTLE_TIMEOUT_S = 300


@pytest.fixture
def bucket_broker(
    use_object_store: SeaweedServer, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SeaweedServer]:
    """Media in this test's bucket prefix and task sends to the emptied private broker, for
    this process (imports, the web) and for every `BucketHost` started meanwhile."""
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    get_settings.cache_clear()
    import redis

    redis.Redis.from_url(private_redis.url).flushdb()
    yield use_object_store
    get_settings.cache_clear()


@dataclass
class BucketHost:
    """A worker with disks of its own: only its cache may ever hold media."""

    worker: WorkerProcess
    media_root: Path
    cache_dir: Path
    cache_bytes: int

    def media_root_files(self) -> list[Path]:
        return [p for p in self.media_root.rglob("*") if p.is_file()]

    def cached_bytes(self) -> int:
        """Bytes of the cached copies on disk (what the size limit bounds)."""
        return sum(p.stat().st_size for p in (self.cache_dir / "data").rglob("*") if p.is_file())


def start_host(
    workers: WorkerPool, folder: Path, *, queues: str, cache_bytes: int = 1024**3
) -> BucketHost:
    """A worker consuming ``queues`` as if on another machine (call under `bucket_broker`)."""
    media_root, cache_dir, data_dir = (folder / name for name in ("media", "cache", "data"))
    for made in (media_root, cache_dir, data_dir):
        made.mkdir(parents=True)
    env = subprocess_env(
        MEDIA_ROOT=str(media_root),
        DATA_DIR=str(data_dir),
        STORAGE_CACHE_DIR=str(cache_dir),
        STORAGE_CACHE_BYTES=str(cache_bytes),
        STORAGE_CACHE_KEEP_RECENT_S="0",  # evict as soon as over: the limit is what is tested
    )
    return BucketHost(workers.start(env, queues=queues), media_root, cache_dir, cache_bytes)


def jobs_of(clip_ids: Sequence[int]) -> list[Job]:
    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.clip_id.in_(clip_ids))))


def clip_states(clip_ids: Sequence[int]) -> set[ClipState]:
    with session_scope() as session:
        return set(session.scalars(select(Clip.state).where(Clip.id.in_(clip_ids))))


def settle(hosts: Sequence[BucketHost], clip_ids: Sequence[int]) -> None:
    """Wait until no job of the clips is queued or running (any host dying fails at once)."""

    def settled() -> bool:
        for host in hosts:
            if host.worker.process.poll() is not None:
                raise AssertionError(f"a worker died:\n{host.worker.tail()}")
        return not [j for j in jobs_of(clip_ids) if j.state in (JobState.queued, JobState.running)]

    try:
        wait_for(settled, SETTLE_TIMEOUT_S, f"clips {list(clip_ids)} to settle", interval_s=0.5)
    except AssertionError as exc:
        states = sorted((j.clip_id, j.step, j.state.value, j.error) for j in jobs_of(clip_ids))
        logs = "\n".join(f"--- {h.worker.name} ---\n{h.worker.tail()}" for h in hosts)
        raise AssertionError(f"{exc}\n{states}\n{logs}") from None
