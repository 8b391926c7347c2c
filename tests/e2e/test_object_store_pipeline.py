"""The whole pipeline with media in a real SeaweedFS bucket, run by two workers as two hosts.

One worker consumes only the cheap queue and the other only the model queue, so every clip
crosses hosts (probe, frames and shots on one, keypoints and faces on the other, caption and
audio back). Each has its own MEDIA_ROOT, which must stay empty, and a cache small enough
that it evicts. Postgres stack only: the embedded stack keeps its media on the local disk
and runs one worker inside `cellabel serve`, so there is no second host to be.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.clips.models import Clip, ClipState
from app.core.db import session_scope
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL
from app.core.storage import get_storage
from app.media.framecache import FrameCache, build_frame_cache
from app.pipeline import intake
from app.pipeline.models import JobState
from app.pipeline.registry import STEP_ORDER
from app.pipeline.service import get_step
from app.projects.models import Subset
from app.projects.service import create_project
from app.samples.generator import make_clip
from app.samples.manifest import write_samples_manifest
from tests.bucket_hosts import clip_states, jobs_of, settle, start_host
from tests.factories import create_user, login
from tests.reliability.conftest import WorkerPool
from tests.workers.conftest import unique_project_name

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.usefixtures("bucket_broker"),
]

# Caches that must evict: the cheap host keeps what it builds (~0.4 MB of frames and previews
# a clip), the model host the sources it reads (~50 kB a clip); each limit holds about two.
CHEAP_CACHE = 900 * 1024
MODEL_CACHE = 120 * 1024
CLIPS = {  # name -> subsets; keypoints (pose) and faces run on the model host
    "walk": ("pose", "i2v"),
    "talk": ("face_audio", "face_video"),
    "both": ("pose", "face_video", "i2v"),
}


def test_two_hosts_run_every_step_on_the_bucket_and_serve_the_local_backends_frames(
    workers: WorkerPool,
    client: TestClient,
    db: Session,
    tmp_path: Path,
) -> None:
    cheap = start_host(workers, tmp_path / "host-a", queues=QUEUE_CHEAP, cache_bytes=CHEAP_CACHE)
    model = start_host(workers, tmp_path / "host-b", queues=QUEUE_MODEL, cache_bytes=MODEL_CACHE)
    sources = {
        name: make_clip(
            tmp_path / "clips", name, seed=900 + i, fps=12, width=192, seconds=3.0,
            subsets=[Subset(s) for s in subsets], kinds=("humanoid",), talking=name == "talk",
            timing="twos", shots=1,
        ).path
        for i, (name, subsets) in enumerate(CLIPS.items())
    }  # fmt: skip
    with session_scope() as session:
        project = create_project(session, unique_project_name("bucket"), subsets=list(Subset))
        manifest = write_samples_manifest(tmp_path / "clips")  # the samples' subsets
        outcomes = intake.import_manifest(session, project, manifest)
    ids = {Path(o.name).stem: o.clip_id for o in outcomes if o.clip_id is not None}
    assert sorted(ids) == sorted(CLIPS), outcomes
    clip_ids = list(ids.values())

    settle([cheap, model], clip_ids)

    assert clip_states(clip_ids) == {ClipState.ready}
    jobs = jobs_of(clip_ids)
    assert {(j.step, j.state) for j in jobs} == {(s, JobState.done) for s in STEP_ORDER}
    for job in jobs:
        host = model if get_step(job.step).queue == QUEUE_MODEL else cheap
        assert job.worker == host.worker.name, f"{job.step} of clip {job.clip_id}"

    # Every frame the web serves from the bucket is the local backend's, byte for byte.
    login(client, db, create_user(db, Role.admin))
    for name, clip_id in ids.items():
        local = tmp_path / "local-frames" / name
        build_frame_cache(sources[name], local)
        expected = FrameCache(local)
        with session_scope() as session:
            frame_count = session.scalars(select(Clip.frame_count).where(Clip.id == clip_id)).one()
        assert frame_count == len(expected)
        for frame in range(len(expected)):
            served = client.get(f"/media/clips/{clip_id}/frames/{frame}.jpg")
            assert served.status_code == 200, served.text
            assert served.content == expected.read_frame(frame), f"{name} frame {frame}"

    # No media on either host's disk outside its cache, and each cache under its limit
    # although more than the limit passed through it.
    storage = get_storage()
    in_bucket = sum(info.size for info in storage.iter_objects("clips"))
    with session_scope() as session:
        keys = session.scalars(select(Clip.storage_key).where(Clip.id.in_(clip_ids))).all()
    read_by_model = sum(info.size for key in keys if (info := storage.stat(key)) is not None)
    assert cheap.cached_bytes() <= CHEAP_CACHE < in_bucket
    assert 0 < model.cached_bytes() <= MODEL_CACHE < read_by_model
    assert cheap.media_root_files() == [] and model.media_root_files() == []
