"""Deleting and retrying a clip: the service functions the clip page, the list's bulk actions,
the API and the CLI share."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clips import service
from app.clips.models import Clip, ClipState
from app.core.errors import Conflict, Invalid
from app.pipeline import intake
from app.pipeline.models import Job, JobState
from tests.factories import approve_truth, create_batch, create_clip, create_project, local_media


def _uploaded_failed_clip(db: Session) -> Clip:
    """A text file renamed .mp4, as the pipeline leaves it: failed, with a job that failed."""
    project = create_project(db)
    outcome = intake.import_stream(db, project, io.BytesIO(b"not a video"), "notes.mp4")
    assert outcome.clip_id is not None
    clip = service.get_clip(db, outcome.clip_id)
    for job in db.scalars(select(Job).where(Job.clip_id == clip.id)):
        job.state = JobState.failed
    clip.state, clip.error = ClipState.failed, "No video stream."
    db.flush()
    return clip


def test_delete_removes_the_clip_its_jobs_and_its_files_after_commit(db: Session) -> None:
    clip = _uploaded_failed_clip(db)
    source = local_media().path(clip.storage_key)
    assert source.is_file()
    service.delete_clip(db, clip.id)
    assert source.is_file()  # nothing is removed before the transaction commits
    db.commit()
    assert db.get(Clip, clip.id) is None
    assert db.scalars(select(Job).where(Job.clip_id == clip.id)).all() == []
    assert not source.parent.exists()


def test_delete_keeps_the_files_when_the_transaction_rolls_back(db: Session) -> None:
    clip = _uploaded_failed_clip(db)
    source = local_media().path(clip.storage_key)
    db.commit()
    service.delete_clip(db, clip.id)
    db.rollback()
    assert source.is_file()
    assert db.get(Clip, clip.id) is not None


def test_delete_refuses_clips_people_work_on(db: Session) -> None:
    project = create_project(db)
    batched, annotated = create_clip(db, project, state=ClipState.ready), create_clip(db, project)
    create_batch(db, project, [batched], name="week 1")
    approve_truth(db, annotated)
    with pytest.raises(Conflict, match="in batch 'week 1'"):
        service.delete_clip(db, batched.id)
    with pytest.raises(Conflict, match="annotations by people"):
        service.delete_clip(db, annotated.id)


def test_retry_requeues_every_step_of_a_failed_clip(db: Session) -> None:
    clip = _uploaded_failed_clip(db)
    jobs = intake.retry_pipeline(db, clip.id)
    assert {j.state for j in jobs} == {JobState.queued}
    assert jobs[0].step == "probe"
    assert clip.state == ClipState.processing and clip.error is None


def test_retry_and_delete_refuse_while_a_step_runs(db: Session) -> None:
    clip = _uploaded_failed_clip(db)
    job = db.scalars(select(Job).where(Job.clip_id == clip.id, Job.step == "probe")).one()
    job.state = JobState.running
    db.flush()
    with pytest.raises(Conflict, match="probe step is running"):
        intake.retry_pipeline(db, clip.id)
    with pytest.raises(Conflict, match="probe step is running"):
        service.delete_clip(db, clip.id)


def test_retry_refuses_a_records_only_clip(db: Session) -> None:
    clip = create_clip(db, storage_key="")
    with pytest.raises(Invalid, match="no media file"):
        intake.retry_pipeline(db, clip.id)
