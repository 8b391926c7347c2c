"""A small sample set with its truth, and the clips ingested once by the real worker.

The worker fixture (``celery_worker``) lives in tests/conftest.py. Everything a worker must
see is committed (``session_scope``), under unique project names, so these tests share the
database with the rolled-back ones without touching them.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.core.db import session_scope
from app.pipeline import intake
from app.projects.service import create_project
from app.samples.badfiles import make_bad_files
from app.samples.generator import SampleClip, make_clip
from app.samples.manifest import write_samples_manifest
from tests.conftest import Worker, wait_until_settled

# Five short clips covering every subset, character kind and drawing timing (<= 384 px wide).
SAMPLE_SPECS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("talk", {"subsets": ("face_audio", "face_video", "i2v"), "kinds": ("humanoid",),
              "talking": True, "timing": "twos", "shots": 1}),
    ("pose_ones", {"subsets": ("pose", "i2v"), "kinds": ("humanoid",), "timing": "ones",
                   "shots": 2}),
    ("pose_twos", {"subsets": ("pose",), "kinds": ("humanoid", "animal"), "timing": "twos",
                   "shots": 2}),
    ("i2v_threes", {"subsets": ("i2v",), "kinds": ("animal", "object"), "timing": "threes",
                    "shots": 3}),
    ("face_video", {"subsets": ("face_video", "i2v"), "kinds": ("humanoid",), "talking": False,
                    "timing": "twos", "shots": 1}),
)  # fmt: skip


@dataclass(frozen=True)
class SampleSet:
    folder: Path
    clips: dict[str, SampleClip]
    manifest: Path
    bad_folder: Path
    bad_expected: dict[str, str]  # file name -> failure kind


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    folder = tmp_path_factory.mktemp("worker-samples")
    clips = {
        name: make_clip(folder, name, seed=100 + i, width=384, fps=24, seconds=3.0, **spec)
        for i, (name, spec) in enumerate(SAMPLE_SPECS)
    }
    bad = folder / "bad"
    make_bad_files(bad)
    return SampleSet(
        folder=folder,
        clips=clips,
        manifest=write_samples_manifest(folder),
        bad_folder=bad,
        bad_expected=json.loads((bad / "expected.json").read_text()),
    )


_names = itertools.count(1)


def unique_project_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_names)}"


@dataclass(frozen=True)
class Ingested:
    project_id: int
    outcomes: list[intake.ImportOutcome]
    clip_ids: dict[str, int]  # file name -> clip id
    seconds: float


@pytest.fixture(scope="session")
def ingested(celery_worker: Worker, sample_set: SampleSet) -> Ingested:
    """The samples (through their manifest) and the bad files, imported together and left
    to the worker until every clip settles: the pipeline the tests compare with the truth."""
    started = time.monotonic()
    with session_scope() as session:
        project = create_project(session, unique_project_name("workers"))
        outcomes = intake.import_manifest(session, project, sample_set.manifest)
        outcomes += intake.import_paths(session, project, [sample_set.bad_folder])
        project_id = project.id
    ids = {o.name: o.clip_id for o in outcomes if o.clip_id is not None}
    wait_until_settled(celery_worker, list(ids.values()))
    return Ingested(project_id, outcomes, ids, time.monotonic() - started)
