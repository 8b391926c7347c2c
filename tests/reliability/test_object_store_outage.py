"""The object store killed under the pipeline and under a clip deletion: the work waits,
clearly, and finishes by itself once the store is back.

Media live in the session's SeaweedFS (``bucket_broker``). A cheap-queue host runs the clip
up to its keypoints step, which waits for a model host; the `weed` process is then killed
and the model host started, so its first read of the source (a miss in its empty cache)
meets a dead store. A clip deleted meanwhile is deleted; its media go once the store answers.
Postgres stack only: workers on separate hosts share Redis, not the
embedded folder broker.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.annotations.drafts import MODEL_CHARACTER_NAME
from app.annotations.models import Annotation, Character
from app.auth.models import Role
from app.clips import service as clip_service
from app.clips.models import Clip, ClipState
from app.core.db import session_scope
from app.core.jobs import QUEUE_CHEAP, QUEUE_MODEL
from app.core.storage import clip_prefix, get_storage
from app.pipeline import intake
from app.pipeline.models import Job, JobState
from app.pipeline.runner import STORE_RETRY_NOTE
from app.projects.models import Subset
from app.projects.service import create_project
from app.samples.generator import make_clip
from app.samples.manifest import write_samples_manifest
from tests.bucket_hosts import bucket_broker, clip_states, jobs_of, settle, start_host  # noqa: F401
from tests.factories import create_user, login
from tests.object_store import SeaweedServer
from tests.reliability.conftest import WorkerPool, wait_for
from tests.workers.conftest import unique_project_name

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.usefixtures("bucket_broker"),
]


def by_step(clip_id: int) -> dict[str, Job]:
    return {job.step: job for job in jobs_of([clip_id])}


def model_characters(clip_id: int) -> int:
    with session_scope() as session:
        return len(
            session.scalars(
                select(Character)
                .join(Annotation, Character.annotation_id == Annotation.id)
                .where(Annotation.clip_id == clip_id, Character.name == MODEL_CHARACTER_NAME)
            ).all()
        )


def test_a_step_that_loses_the_store_waits_with_a_retryable_error_and_finishes_after(
    object_store: SeaweedServer,
    workers: WorkerPool,
    client: TestClient,
    db: Session,
    tmp_path: Path,
) -> None:
    cheap = start_host(workers, tmp_path / "cheap", queues=QUEUE_CHEAP)
    make_clip(
        tmp_path / "clips", "outage", seed=950, fps=12, width=192, seconds=3.0,
        subsets=[Subset.pose], kinds=("humanoid",), timing="twos", shots=1,
    )  # fmt: skip
    with session_scope() as session:
        project = create_project(session, unique_project_name("outage"), subsets=[Subset.pose])
        (outcome,) = intake.import_manifest(
            session, project, write_samples_manifest(tmp_path / "clips")
        )
    assert outcome.clip_id is not None, outcome
    clip_id = outcome.clip_id
    wait_for(
        lambda: by_step(clip_id)["shots"].state == JobState.done, 120, "the cheap steps"
    )  # keypoints now waits in the model queue

    object_store.stop()
    try:
        model = start_host(workers, tmp_path / "model", queues=QUEUE_MODEL)
        wait_for(lambda: by_step(clip_id)["keypoints"].error is not None, 120, "keypoints to fail")
        jobs = by_step(clip_id)
        keypoints = jobs["keypoints"]
        assert keypoints.state != JobState.failed  # queued to be retried (or retrying)
        message = (keypoints.error or "").splitlines()[0]
        assert object_store.endpoint in message and "did not answer" in message
        assert message.endswith(STORE_RETRY_NOTE)
        done = {step for step, job in jobs.items() if job.state == JobState.done}
        assert done == {"probe", "frames", "shots"}
        assert clip_states([clip_id]) == {ClipState.processing}
        assert model_characters(clip_id) == 0  # nothing of the failed run was kept

        # Meanwhile the clip page shows why the clip waits (and does not fail for the store).
        login(client, db, create_user(db, Role.admin))
        page = client.get(f"/clips/{clip_id}")
        assert page.status_code == 200
        assert STORE_RETRY_NOTE in page.text and "did not answer" in page.text
    finally:
        object_store.start()

    settle([cheap, model], [clip_id])  # no person: the worker's own retries
    assert clip_states([clip_id]) == {ClipState.ready}
    jobs = by_step(clip_id)
    assert {job.state for job in jobs.values()} == {JobState.done}
    assert jobs["keypoints"].attempts >= 2 and jobs["keypoints"].error is None
    assert model_characters(clip_id) == 1


def test_a_clip_deleted_while_the_store_is_down_loses_its_media_once_it_is_back(
    object_store: SeaweedServer, workers: WorkerPool, tmp_path: Path
) -> None:
    storage = get_storage()
    with session_scope() as session:
        project = create_project(session, unique_project_name("outage-delete"))
        outcome = intake.import_stream(session, project, io.BytesIO(b"not a video"), "a.mp4")
        assert outcome.clip_id is not None, outcome
        prefix = clip_prefix(project.id, outcome.clip_id)
    assert list(storage.iter_objects(prefix))

    object_store.stop()
    try:
        with session_scope() as session:  # no error: the rows go, the media wait
            clip_service.delete_clip(session, outcome.clip_id)
        with session_scope() as session:
            assert session.get(Clip, outcome.clip_id) is None
        host = start_host(workers, tmp_path / "host", queues=QUEUE_CHEAP)  # retries meanwhile
    finally:
        object_store.start()

    wait_for(lambda: not list(storage.iter_objects(prefix)), 120, "the media to be removed")
    assert host.worker.process.poll() is None
