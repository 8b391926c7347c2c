"""The labeling-efficiency annotator really reaches the truth with the actions it counts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete

from app.auth import service as auth
from app.auth.models import Role, User
from app.clips import service as clips
from app.core.db import session_scope
from app.pipeline import intake
from app.pipeline.runner import run_queued_inline
from app.projects.models import Project
from app.projects.service import create_project
from app.samples.generator import make_clip
from bench.scripted_annotator import POLICIES, annotate

pytestmark = pytest.mark.slow


def test_every_policy_ends_at_the_truth_and_the_platform_saves_work(
    engine: object, tmp_path: Path
) -> None:
    samples = [
        make_clip(
            tmp_path,
            "walk",
            seed=5,
            width=320,
            fps=12,
            seconds=2,
            subsets=["pose"],
            kinds=["humanoid"],
            talking=False,
            timing="twos",
            shots=1,
        ),
        make_clip(
            tmp_path,
            "dog",
            seed=6,
            width=320,
            fps=12,
            seconds=1.5,
            subsets=["pose"],
            kinds=["animal", "humanoid"],
            talking=False,
            timing="threes",
            shots=2,
        ),
    ]
    tag = uuid.uuid4().hex[:8]
    with session_scope() as s:
        project = create_project(s, f"scripted-{tag}")
        project_id = project.id
        ids = {
            c.truth["clip"]: intake.import_file(
                s, project, c.path, clips.ClipSpec(["pose"])
            ).clip_id
            for c in samples
        }
    run_queued_inline(list(ids.values()))
    totals = {}
    user_ids = []
    try:
        for policy in POLICIES:
            with session_scope() as s:
                user = auth.create_user(
                    s, f"scripted-{policy}-{tag}", "scripted-password", Role.annotator
                )
                user_ids.append(user.id)
                results = [
                    annotate(s, user, clips.get_clip(s, ids[c.truth["clip"]]), c.truth, policy)
                    for c in samples
                ]
            assert all(r.wrong_points == 0 for r in results), policy
            if policy == "track":  # every labelled point ends as a person's, none a guess
                assert all(r.unaccepted_points == 0 for r in results)
                assert sum(r.actions.counts["track_presses"] for r in results) > 0
                assert sum(r.actions.counts["span_accepts"] for r in results) > 0
            totals[policy] = sum(r.actions.total for r in results)
    finally:
        with session_scope() as s:
            s.execute(delete(Project).where(Project.id == project_id))
            s.execute(delete(User).where(User.id.in_(user_ids)))
    assert totals["full"] < totals["drafts"] <= totals["scratch"]
    assert totals["full"] < 0.5 * totals["scratch"]
    assert totals["track"] < totals["full"]
