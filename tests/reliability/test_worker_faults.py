"""Faults under a real Celery worker: a worker SIGKILLed mid-step, a broker that loses its queue.

Each test runs its own worker subprocess on a private redis-server (``private_redis``), imports
clips with the real CLI, and checks the job rows in PostgreSQL: the record that must survive.
"""

from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from app.annotations.drafts import MODEL_CHARACTER_NAME
from app.annotations.models import Annotation, AnnotationKind, Character, KeypointFrame, Track
from app.clips.models import Clip, ClipState
from app.core.db import session_scope
from app.export import build as export_build
from app.export import service as export_service
from app.export.models import ExportSnapshot
from app.pipeline.models import Job, JobState
from app.pipeline.service import broker_job_ids
from app.projects.models import Subset
from app.projects.service import create_project
from app.samples.generator import make_clip
from tests.export.builders import approved_annotation, media_clip, queued_snapshot
from tests.reliability.conftest import (
    PrivateRedis,
    WorkerPool,
    WorkerProcess,
    broker_app,
    run_cli,
    subprocess_env,
    wait_for,
)
from tests.workers.conftest import unique_project_name

pytestmark = [pytest.mark.worker, pytest.mark.slow]

STALE_AFTER_S = 3.0
SETTLE_TIMEOUT_S = 180
EXPORT_CLIPS = 60  # enough for a build of a second or more, to kill it midway


def import_clips(
    folder: Path, names: list[str], subsets: str, env: dict[str, str], **clip: object
) -> list[int]:
    """Render small sample clips and import them with `cellabel clips import` (no --wait)."""
    with session_scope() as session:
        chosen = [Subset(s) for s in subsets.split(",")]
        project = create_project(session, unique_project_name("rel"), subsets=chosen)
        project_name = project.name
    paths = [
        make_clip(folder, name, seed=700 + i, fps=12, subsets=subsets.split(","),
                  **{"width": 192, **clip}).path  # type: ignore[arg-type]
        for i, name in enumerate(names)
    ]  # fmt: skip
    done = run_cli(
        "clips", "import", *map(str, paths), "--project", project_name, "--subsets", subsets,
        "--json", env=env,
    )  # fmt: skip
    outcomes = json.loads(done.stdout)
    rows = outcomes if isinstance(outcomes, list) else outcomes["outcomes"]
    ids = [int(o["clip_id"]) for o in rows if o["status"] == "created"]
    assert len(ids) == len(names), done.stdout
    return ids


def jobs_of(clip_ids: list[int]) -> list[Job]:
    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.clip_id.in_(clip_ids))))


def settle(worker: WorkerProcess, clip_ids: list[int]) -> None:
    def settled() -> bool:
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker died:\n{worker.tail()}")
        busy = [j for j in jobs_of(clip_ids) if j.state in (JobState.queued, JobState.running)]
        return not busy

    try:
        wait_for(settled, SETTLE_TIMEOUT_S, f"clips {clip_ids} to settle", interval_s=0.3)
    except AssertionError as exc:
        states = [(j.clip_id, j.step, j.state.value) for j in jobs_of(clip_ids)]
        raise AssertionError(f"{exc}\n{states}\n--- worker log ---\n{worker.tail()}") from None


def assert_all_done(clip_ids: list[int]) -> None:
    with session_scope() as session:
        states = session.scalars(select(Clip.state).where(Clip.id.in_(clip_ids))).all()
    assert states and set(states) == {ClipState.ready}
    assert {j.state for j in jobs_of(clip_ids)} == {JobState.done}


def test_worker_killed_mid_keypoints_finishes_the_step_exactly_once_after_restart(
    private_redis: PrivateRedis, workers: WorkerPool, tmp_path: Path
) -> None:
    env = subprocess_env(
        REDIS_URL=private_redis.url, JOB_STALE_AFTER_S=str(STALE_AFTER_S), LOG_FORMAT="json"
    )
    # Started first: a solo worker busy with a step cannot answer the start-up ping.
    first = workers.start(env)
    (clip_id,) = import_clips(
        tmp_path, ["kill_me"], "pose", env, seconds=4.0, kinds=("humanoid",), timing="ones",
        shots=1, width=256,
    )  # fmt: skip

    def keypoints_running() -> bool:
        job = next(j for j in jobs_of([clip_id]) if j.step == "keypoints")
        assert job.state != JobState.done, f"keypoints ended before the kill ({job.duration_s} s)"
        return job.state == JobState.running

    wait_for(keypoints_running, 120, "the keypoints step to start", interval_s=0.02)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()

    killed = next(j for j in jobs_of([clip_id]) if j.step == "keypoints")
    assert (killed.state, killed.attempts) == (JobState.running, 1)
    # The dead worker's message stays unacknowledged in Redis (visibility timeout: 1 h), so the
    # reconciler re-sends the job once its claim is stale; the periodic task does it here.
    second = workers.start(env)
    time.sleep(STALE_AFTER_S + 1)
    waiting = next(j for j in jobs_of([clip_id]) if j.step == "keypoints")
    assert (waiting.state, waiting.attempts) == (JobState.running, 1)  # nothing else revives it
    broker_app(private_redis.url).send_task("cellabel.reconcile", queue="cheap")
    settle(second, [clip_id])

    assert_all_done([clip_id])
    by_step = {j.step: j for j in jobs_of([clip_id])}
    assert by_step["keypoints"].attempts == 2  # the killed run and the one that finished
    assert all(j.attempts == 1 for step, j in by_step.items() if step != "keypoints")
    with session_scope() as session:
        clip = session.get_one(Clip, clip_id)
        model = session.scalars(
            select(Annotation).where(
                Annotation.clip_id == clip_id, Annotation.kind == AnnotationKind.model
            )
        ).one()
        characters = session.scalars(
            select(Character).where(
                Character.annotation_id == model.id, Character.name == MODEL_CHARACTER_NAME
            )
        ).all()
        assert len(characters) == 1
        (track,) = session.scalars(select(Track).where(Track.character_id == characters[0].id))
        frames = session.scalars(
            select(KeypointFrame.frame_index).where(KeypointFrame.track_id == track.id)
        ).all()
        assert sorted(frames) == list(range(clip.frame_count or 0))
    # The worker's JSON log lines name the job they belong to.
    lines = [json.loads(line) for line in second.log.read_text().splitlines() if line[:1] == "{"]
    finished = [line for line in lines if line.get("job_id") == str(by_step["keypoints"].id)]
    assert [line["message"] for line in finished] == [f"step keypoints of clip {clip_id}: done"]


def _lose_the_queue_then_recover(
    private_redis: PrivateRedis, workers: WorkerPool, tmp_path: Path, *, restart: bool
) -> tuple[list[int], list[int]]:
    """Import with no worker running, lose every message, backdate the jobs past the
    reconciler's min age; returns (clip ids, the jobs that were queued)."""
    env = subprocess_env(REDIS_URL=private_redis.url)
    clip_ids = import_clips(
        tmp_path, ["lost_a", "lost_b"], "i2v", env, seconds=1.0, kinds=("object",), shots=1
    )
    queued = [j.id for j in jobs_of(clip_ids) if j.step == "probe"]
    assert set(queued) <= (broker_job_ids_at(private_redis.url) or set())
    if restart:
        private_redis.stop()
        private_redis.start()
    else:
        redis.Redis.from_url(private_redis.url).flushdb()
    assert not set(queued) & (broker_job_ids_at(private_redis.url) or set())
    with session_scope() as session:
        for job in session.scalars(select(Job).where(Job.clip_id.in_(clip_ids))):
            job.queued_at = job.queued_at.replace(year=job.queued_at.year - 1)
    return clip_ids, queued


def broker_job_ids_at(redis_url: str) -> set[int] | None:
    """`broker_job_ids` of another broker (the function reads the app's settings)."""
    from app.core.config import get_settings

    settings = get_settings()
    saved = settings.redis_url
    settings.redis_url = redis_url
    try:
        return broker_job_ids()
    finally:
        settings.redis_url = saved


def test_flushed_broker_jobs_are_resent_by_the_cli_reconciler(
    private_redis: PrivateRedis, workers: WorkerPool, tmp_path: Path
) -> None:
    clip_ids, queued = _lose_the_queue_then_recover(private_redis, workers, tmp_path, restart=False)
    env = subprocess_env(REDIS_URL=private_redis.url)
    resent = json.loads(run_cli("reconcile", "--json", env=env).stdout)["resent"]
    assert set(queued) <= set(resent)
    again = json.loads(run_cli("reconcile", "--json", env=env).stdout)["resent"]
    assert not set(queued) & set(again)  # re-sent once, not on every sweep

    settle(workers.start(env), clip_ids)
    assert_all_done(clip_ids)
    assert all(j.attempts == 1 for j in jobs_of(clip_ids))


def test_restarted_broker_jobs_are_resent_by_the_periodic_task(
    private_redis: PrivateRedis, workers: WorkerPool, tmp_path: Path
) -> None:
    clip_ids, _ = _lose_the_queue_then_recover(private_redis, workers, tmp_path, restart=True)
    env = subprocess_env(REDIS_URL=private_redis.url)
    worker = workers.start(env)
    time.sleep(1.0)
    with session_scope() as session:  # nothing arrives on its own: the messages are gone
        moved = select(func.count(Job.id)).where(
            Job.clip_id.in_(clip_ids), Job.state != JobState.queued
        )
        assert session.scalar(moved) == 0
    broker_app(private_redis.url).send_task("cellabel.reconcile", queue="cheap")
    settle(worker, clip_ids)
    assert_all_done(clip_ids)


def test_worker_killed_mid_export_build_is_taken_over_and_finishes_once(
    private_redis: PrivateRedis, workers: WorkerPool
) -> None:
    """The snapshot stays `running` with a silent heartbeat; the reconciler re-sends it, the
    next delivery takes it over, and one archive of every clip results (no partial archive left)."""
    env = subprocess_env(REDIS_URL=private_redis.url, JOB_STALE_AFTER_S=str(STALE_AFTER_S))
    with session_scope() as session:
        project = create_project(session, unique_project_name("export-kill"))
        for n in range(EXPORT_CLIPS):
            approved_annotation(session, media_clip(session, project, f"kill {n}".encode()))
        formats = ["coco_wholebody", "cellabel", "captions"]
        snapshot_id = queued_snapshot(session, project.id, "killed", formats).id
    first = workers.start(env)
    broker_app(private_redis.url).send_task(export_service.BUILD_TASK, (snapshot_id,),
                                            queue="cheap")  # fmt: skip

    def building() -> bool:
        with session_scope() as session:
            state = session.get_one(ExportSnapshot, snapshot_id).state
        assert state != "done", "the build ended before the kill"
        return state == "running"

    wait_for(building, 60, "the export build to start", interval_s=0.01)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()

    second = workers.start(env)
    time.sleep(STALE_AFTER_S + 1)
    with session_scope() as session:
        assert session.get_one(ExportSnapshot, snapshot_id).state == "running"  # nothing revives it
    broker_app(private_redis.url).send_task("cellabel.reconcile", queue="cheap")

    def built() -> bool:
        if second.process.poll() is not None:
            raise AssertionError(f"the worker died:\n{second.tail()}")
        with session_scope() as session:
            return session.get_one(ExportSnapshot, snapshot_id).state == "done"

    wait_for(built, SETTLE_TIMEOUT_S, "the export to be rebuilt", interval_s=0.2)
    with session_scope() as session:
        snapshot = session.get_one(ExportSnapshot, snapshot_id)
        assert len(snapshot.annotation_versions) == EXPORT_CLIPS
        archive = export_service.archive_path(snapshot)
    with zipfile.ZipFile(archive) as zf:
        assert len(zf.read("captions.jsonl").splitlines()) == EXPORT_CLIPS
    assert not list(archive.parent.glob(".part-*"))  # (scratch left by the kill goes in an hour)
    # The killed build's code path, finishing late as attempt 1: refused, its file removed.
    assert export_build.run_claimed_build(snapshot_id, attempt=1) == "taken over"
    with session_scope() as session:
        after = session.get_one(ExportSnapshot, snapshot_id)
        assert (after.state, after.attempt, after.sha256) == ("done", 2, snapshot.sha256)
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]
