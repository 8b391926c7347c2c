"""The whole tracking request as the server answers it, for bench/tracking.py: POST
/api/tracks/{id}/track on a 640x360 clip whose shot is 24 frames, 133 points a person set on
its first frame; frames from the frame cache, tracking, the DB write and the answer with each
frame's state before. Runs the real app in-process (TestClient) on a scratch PostgreSQL
database; imported only when measured (it points the app at that database).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench._report import recreate_database, scratch_url

if TYPE_CHECKING:
    from bench.tracking import Timings

ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "cellabel_bench_tracking"
PART = "whole request: POST /api/tracks/{id}/track, cache reads, tracking, DB write, answer"
os.environ["DATABASE_URL"] = scratch_url(DB_NAME)
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("DATA_DIR", str(ROOT / "bench" / ".work"))


def request_speed(timings: Timings, runs: int, span: int) -> None:
    """Time the tracking request ``runs`` times into ``timings`` (undone after each, untimed);
    its CPU time is the app's (the in-process server), not PostgreSQL's."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from app.annotations.keypoint_edits import save_frame
    from app.annotations.models import Shot
    from app.annotations.opening import open_assignment
    from app.annotations.payload import annotation_payload
    from app.auth import service as auth
    from app.auth.models import Role
    from app.core.db import session_scope
    from app.core.migrate import upgrade_database
    from app.core.security import SESSION_COOKIE, sign
    from app.core.storage import clip_prefix
    from app.main import create_app
    from app.media.framecache import build_frame_cache
    from app.samples.generator import make_clip
    from tests.factories import assign_clip, create_clip, create_model_draft, local_media

    recreate_database(DB_NAME)
    upgrade_database()
    with tempfile.TemporaryDirectory() as tmp:
        sample = make_clip(Path(tmp), "service", seed=7, width=640, aspect=16 / 9, fps=24,
                           seconds=1.2, kinds=["humanoid"], shots=1, timing="ones",
                           subsets=["pose"])  # fmt: skip
        truth = np.asarray(sample.truth["characters"][0]["keypoints"][0], np.float32)
        with session_scope() as s:
            clip = create_clip(s, subsets=["pose"], width=640, height=360, fps=24.0,
                               frame_count=sample.truth["frame_count"], state="ready")  # fmt: skip
            source = local_media().path(clip.storage_key)
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(sample.path.read_bytes())
            build_frame_cache(
                source, local_media().path(clip_prefix(clip.project_id, clip.id)) / "frames"
            )
            draft = create_model_draft(s, clip)
            s.scalars(select(Shot).where(Shot.annotation_id == draft.id)).one().end_frame = span
            user = auth.create_user(s, "bench-tracker", "bench-password", Role.annotator)
            _, annotation = open_assignment(s, user, assign_clip(s, clip, user, "bench").id)
            track = annotation_payload(s, annotation)["characters"][0]["tracks"][0]
            points = [
                [float(np.clip(x, 0, 639)), float(np.clip(y, 0, 359)), 2] for x, y, _ in truth
            ]
            # A keyframe of the person's points: Track has nothing more to accept on it.
            version = track["frames"][0]["version"]
            key = save_frame(s, user, track["id"], 0, points, version, keyframe=True)[0]
            version, new = key.version, auth.start_session(s, user)
    client = TestClient(create_app())
    client.cookies.set(SESSION_COOKIE, sign(new.key))
    body = {"frame": 0, "version": version, "direction": "forward"}
    headers = {"X-CSRF-Token": new.csrf_token}
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        answer = client.post(f"/api/tracks/{track['id']}/track", json=body, headers=headers)
        timings.add(PART, time.perf_counter() - wall, time.process_time() - cpu)
        frames = answer.json()["frames"]
        assert answer.status_code == 200 and len(frames) == span - 1, answer.text
        undo = [{"frame": f["frame"], "version": f["version"], **f["before"]} for f in frames]
        restored = client.post(f"/api/tracks/{track['id']}/frames/restore", headers=headers,
                               json={"action": "undo", "frames": undo})  # fmt: skip
        assert restored.status_code == 200, restored.text  # the next run writes them again
