"""Ingestion end to end through a real Celery worker (issue 4): samples and bad files in one
import, probe values and frame caches against the generator's truth, duplicates, manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.clips.models import Clip, ClipState
from app.core.db import session_scope
from app.core.errors import Invalid
from app.media.framecache import FrameCache
from app.pipeline import intake
from app.pipeline.models import Job, JobState
from app.projects.models import Project
from app.projects.service import create_project
from tests.factories import clip_media_dir
from tests.workers.conftest import Ingested, SampleSet, unique_project_name

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_every_sample_clip_is_ready_with_the_truths_probe_values_and_frame_cache(
    ingested: Ingested, sample_set: SampleSet
) -> None:
    with session_scope() as session:
        for name, sample in sample_set.clips.items():
            truth = sample.truth
            clip = session.get_one(Clip, ingested.clip_ids[f"{name}.mp4"])
            assert clip.state == ClipState.ready, (name, clip.error)
            assert (clip.width, clip.height) == (truth["width"], truth["height"])
            assert clip.frame_count == truth["frame_count"]
            assert clip.fps == pytest.approx(truth["fps"])
            assert clip.has_audio == truth["has_audio"]
            # what the manifest carried
            assert clip.external_id == name
            assert clip.subsets == truth["subsets"]
            assert clip.source_tags == truth["tags"]
            cache = FrameCache(clip_media_dir(clip) / "frames")
            assert len(cache) == truth["frame_count"]
            assert (cache.info.source_width, cache.info.source_height) == (
                truth["width"],
                truth["height"],
            )
            jobs = {j.step: j for j in session.scalars(select(Job).where(Job.clip_id == clip.id))}
            assert all(j.state == JobState.done for j in jobs.values()), {
                s: (j.state.value, j.error) for s, j in jobs.items()
            }
            assert all(j.worker and "@" in j.worker for j in jobs.values())  # node@host


def test_every_bad_file_fails_with_its_kind_and_a_readable_message(
    ingested: Ingested, sample_set: SampleSet
) -> None:
    assert set(sample_set.bad_expected) <= set(ingested.clip_ids)
    with session_scope() as session:
        for file_name, kind in sample_set.bad_expected.items():
            clip = session.get_one(Clip, ingested.clip_ids[file_name])
            assert clip.state == ClipState.failed, file_name
            assert clip.error_kind == kind, (file_name, clip.error)
            message = clip.error or ""
            assert len(message) > 10 and "Traceback" not in message, (file_name, message)
            probe = session.scalars(
                select(Job).where(Job.clip_id == clip.id, Job.step == "probe")
            ).one()
            assert probe.state == JobState.failed and probe.attempts == 1  # not retried


def test_duplicates_are_reported_and_not_stored_twice(
    ingested: Ingested, sample_set: SampleSet
) -> None:
    with session_scope() as session:
        project = session.get_one(Project, ingested.project_id)
        before = session.scalar(select(func.count()).where(Clip.project_id == project.id))
        outcomes = intake.import_paths(
            session, project, [s.path for s in sample_set.clips.values()]
        )
        after = session.scalar(select(func.count()).where(Clip.project_id == project.id))
    assert after == before
    assert [o.status for o in outcomes] == ["duplicate"] * len(sample_set.clips)
    assert [o.clip_id for o in outcomes] == [
        ingested.clip_ids[s.path.name] for s in sample_set.clips.values()
    ]


def test_a_malformed_manifest_imports_nothing(sample_set: SampleSet, tmp_path: Path) -> None:
    good = json.loads(sample_set.manifest.read_text().splitlines()[0])
    good["path"] = str(sample_set.folder / good["path"])
    broken_rows = {
        "bad_json.jsonl": json.dumps(good) + "\n{not json\n",
        "unknown_subset.jsonl": json.dumps(good) + "\n" + json.dumps({**good, "subsets": ["x"]}),
        "no_path.jsonl": json.dumps(good) + "\n" + json.dumps({"subsets": ["i2v"]}) + "\n",
    }
    for file_name, text in broken_rows.items():
        manifest = tmp_path / file_name
        manifest.write_text(text)
        with session_scope() as session:
            project = create_project(session, unique_project_name("manifest"))
            project_id = project.id
        with pytest.raises(Invalid), session_scope() as session:
            project = session.get_one(Project, project_id)
            intake.import_manifest(session, project, manifest)
        with session_scope() as session:
            assert not session.scalar(select(func.count()).where(Clip.project_id == project_id))
