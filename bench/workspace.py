"""Server time for a keypoint save and for loading a 300-frame clip's annotations.

Runs the real app in-process (TestClient, no network) against a scratch PostgreSQL database:
    .venv/bin/python bench/workspace.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import recreate_database, scratch_url  # noqa: E402

DB_NAME = "cellabel_bench_workspace"
os.environ["DATABASE_URL"] = scratch_url(DB_NAME)
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("DATA_DIR", str(ROOT / "bench" / ".work"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    recreate_database(DB_NAME)

    from app.annotations.opening import open_assignment
    from app.auth import service as auth
    from app.auth.models import Role
    from app.core.db import session_scope
    from app.core.migrate import upgrade_database
    from app.core.security import SESSION_COOKIE, sign
    from app.main import create_app
    from bench._report import percentiles, write_section
    from tests.factories import assign_clip, create_clip, create_model_draft

    upgrade_database()
    with session_scope() as s:
        clip = create_clip(s, subsets=["pose"], frame_count=args.frames, width=1280, height=720)
        create_model_draft(s, clip, frames=args.frames)
        user = auth.create_user(s, "bench-annotator", "bench-password", Role.annotator)
        assignment = assign_clip(s, clip, user, "bench")
        _, annotation = open_assignment(s, user, assignment.id)
        new = auth.start_session(s, user)
        annotation_id = annotation.id

    client = TestClient(create_app())
    client.cookies.set(SESSION_COOKIE, sign(new.key))
    headers = {"X-CSRF-Token": new.csrf_token}
    payload = client.get(f"/api/annotations/{annotation_id}").json()
    track = payload["characters"][0]["tracks"][0]
    versions = {f["frame"]: f["version"] for f in track["frames"]}
    points = [p[:3] for p in track["frames"][0]["points"]]

    load_ms, save_ms = [], []
    for i in range(args.rounds):
        t0 = time.perf_counter()
        response = client.get(f"/api/annotations/{annotation_id}")
        load_ms.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
        frame = i % args.frames
        points[9] = [100.0 + i % 50, 200.0, 2]
        t0 = time.perf_counter()
        saved = client.put(
            f"/api/tracks/{track['id']}/frames/{frame}",
            json={"points": points, "version": versions[frame]},
            headers=headers,
        )
        save_ms.append((time.perf_counter() - t0) * 1000)
        assert saved.status_code == 200, saved.text
        versions[frame] = saved.json()[0]["version"]

    load, save = percentiles(load_ms), percentiles(save_ms)
    body = f"""
Server time measured in-process (FastAPI TestClient, no network) on PostgreSQL, one annotator,
a clip of {args.frames} frames with one 133-point COCO-WholeBody track, {args.rounds} rounds.

| operation | p50 ms | p95 ms | target |
|---|---:|---:|---|
| save one frame (`PUT /api/tracks/{{id}}/frames/{{n}}`) | {save["p50"]:.1f} | {save["p95"]:.1f} | p95 < 50 ms (issue 13, under load) |
| load the clip's annotations (`GET /api/annotations/{{id}}`, {args.frames} frames) | {load["p50"]:.1f} | {load["p95"]:.1f} | — |
"""
    write_section("Workspace: keypoint save and annotation load", body, "python bench/workspace.py")
    print(body)


if __name__ == "__main__":
    main()
