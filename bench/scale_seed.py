"""Seed a PostgreSQL database at dataset scale through bulk paths (COPY and INSERT ... SELECT).

    .venv/bin/python bench/scale_seed.py [--clips 400000] [--pose 50000] [--frames 120]

What it writes (database ``cellabel_perf_scale`` by default, dropped and re-created):

* one project, 1 admin, 4 reviewers, 50 annotators (one password hash);
* ``--clips`` ready clips with probe values, subsets and tags, streamed with ``COPY``;
* on the first ``--pose`` clips an approved primary human annotation (one shot, one clip
  caption, one humanoid COCO-17 track of ``--frames`` frames); the keypoint rows are streamed
  with ``COPY`` in the storage format of :func:`app.annotations.points.encode_points`;
* one batch over every clip (overlap 2 on 20 %), approved assignments for the pose clips,
  10k submitted annotations waiting in the review queue, 10k agreement scores;
* for each annotator a draft annotation of a 300-frame clip with one 133-point
  COCO-WholeBody track (the workspace benchmark's clip) and its in-progress assignment.

The ids the measurements need are written to ``bench/.work/scale_seed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.annotations.points import encode_points  # noqa: E402
from app.auth.models import Role, User  # noqa: E402
from app.batches import sampling, service  # noqa: E402
from app.batches.schemas import AssignConfig, BatchCreate  # noqa: E402
from app.clips.filters import ClipFilter  # noqa: E402
from app.clips.models import ClipState  # noqa: E402
from app.core.migrate import upgrade_database  # noqa: E402
from app.core.security import hash_password  # noqa: E402
from app.projects import service as project_service  # noqa: E402
from bench._report import drop_database, recreate_database  # noqa: E402

ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = os.environ.get("SCALE_DB_NAME", "cellabel_perf_scale")
WORK = ROOT / "bench" / ".work"
SEED_FILE = WORK / "scale_seed.json"
PASSWORD = "bench-password"
SUBSETS = (["i2v"], ["face_video"], ["face_audio"], ["i2v", "face_video"])
EPOCH = datetime(2026, 10, 1, tzinfo=UTC)
WORKSPACE_FRAMES = 300
REVIEW_WAITING = 10_000
AGREEMENT_ROWS = 10_000


@dataclass
class SeedInfo:
    """What the measurements read back: ids, names and how long each bulk step took."""

    db_url: str
    project_id: int
    batch_id: int
    clips: int
    pose_clips: int
    frames_per_track: int
    admin: str
    annotators: list[str]
    # per annotator: assignment id, annotation id, track id, clip id of the 300-frame clip
    workspace: list[dict[str, int]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def db_url(name: str = DB_NAME) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def raw_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def recreate(name: str) -> str:
    recreate_database(name)
    return db_url(name)


def drop(name: str = DB_NAME) -> None:
    drop_database(name)


def pose_blobs(frames: int, k: int, variants: int = 4) -> list[list[bytes]]:
    """``variants`` moving poses of ``frames`` frames each, already encoded for storage."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(variants):
        base = rng.uniform(100, 500, size=(k, 2)).astype(np.float32)
        drift = rng.normal(0, 2, size=(k, 2)).astype(np.float32)
        seq = []
        for f in range(frames):
            pose = np.zeros((k, 4), dtype=np.float32)
            pose[:, :2] = base + drift * np.sin(f / 8)
            pose[:, 2] = 2
            pose[:, 3] = 0.9
            seq.append(encode_points(pose))
        out.append(seq)
    return out


def copy_clips(conn: psycopg.Connection[Any], project_id: int, start: int, count: int,
               frames: int, subsets: list[str] | None = None) -> None:  # fmt: skip
    """``count`` ready clips numbered from ``start`` (``subsets`` or a rotating mix)."""
    columns = (
        "project_id, external_id, filename, storage_key, content_hash, size_bytes, subsets, "
        "source_tags, state, container, video_codec, width, height, fps, frame_count, "
        "duration_s, has_audio, variable_frame_rate, probe, held_runs, scores, quality_flags, "
        "created_at, updated_at"
    )
    with conn.cursor() as cur, cur.copy(f"COPY clip ({columns}) FROM STDIN") as copy:
        for n in range(start, start + count):
            made = EPOCH + timedelta(seconds=n * 5)
            tags = json.dumps({"show": f"show{n % 40}", "season": str(n % 7)})
            flags = '{"dark": true}' if n % 50 == 0 else "{}"
            copy.write_row((
                project_id, f"ext-{n}", f"clip{n:07d}.mp4", f"clips/{project_id}/{n}/source.mp4",
                f"{n:064x}", 2_000_000 + n, json.dumps(subsets or SUBSETS[n % len(SUBSETS)]),
                tags, ClipState.ready.value, "mp4", "h264", 1280, 720, 24.0, frames,
                frames / 24.0, n % 3 == 0, False, "{}", "[]", "{}", flags, made, made,
            ))  # fmt: skip


def copy_frames(conn: psycopg.Connection[Any], track_ids: list[int], blobs: list[list[bytes]]
                ) -> int:  # fmt: skip
    """Every frame of every track, one ``keypoint_frame`` row each, streamed with COPY."""
    columns = (
        "track_id, frame_index, points, model_points, is_keyframe, part_valid, flags, version, "
        "updated_at, updated_by_id"
    )
    rows = 0
    with conn.cursor() as cur, cur.copy(f"COPY keypoint_frame ({columns}) FROM STDIN") as copy:
        for i, track_id in enumerate(track_ids):
            seq = blobs[i % len(blobs)]
            for f, blob in enumerate(seq):
                copy.write_row((track_id, f, blob, None, f % 12 == 0, 0, "[]", 1, EPOCH, None))
            rows += len(seq)
    return rows


def annotate(conn: psycopg.Connection[Any], clip_from: int, clip_to: int, *, status: str,
             annotators: list[int], skeleton: str | None, num_points: int) -> list[int]:  # fmt: skip
    """Primary human annotations (with a shot, a clip caption and, if ``skeleton``, one
    humanoid track) on clips ``clip_from..clip_to`` (ids); returns the track ids in clip order."""
    users = "ARRAY[" + ",".join(map(str, annotators)) + "]"
    approved = "now()" if status == "approved" else "NULL"
    conn.execute(
        f"""INSERT INTO annotation (clip_id, kind, annotator_id, is_primary, tags, quality,
              timing, submitted_at, approved_at, created_at, status, version, updated_at)
            SELECT c.id, 'human', ({users})[1 + c.id %% {len(annotators)}], true, '{{}}', '{{}}',
                   'twos', c.created_at + interval '1 day', {approved}, c.created_at,
                   '{status}', 1, now()
            FROM clip c WHERE c.id BETWEEN %s AND %s ORDER BY c.id""",
        (clip_from, clip_to),
    )
    in_range = "a.clip_id BETWEEN %s AND %s"
    conn.execute(
        f"""INSERT INTO shot (annotation_id, start_frame, end_frame, camera_motion, source,
              status, version, updated_at)
            SELECT a.id, 0, c.frame_count, 'static', 'human', '{status}', 1, now()
            FROM annotation a JOIN clip c ON c.id = a.clip_id WHERE {in_range}""",
        (clip_from, clip_to),
    )
    conn.execute(
        f"""INSERT INTO caption (annotation_id, level, target_id, field, text, model_text,
              status, version, updated_at)
            SELECT a.id, 'clip', 0, 'short', 'A character walks across the room, clip '
                   || a.clip_id, NULL, '{status}', 1, now()
            FROM annotation a WHERE {in_range}""",
        (clip_from, clip_to),
    )
    if skeleton is None:
        return []
    conn.execute(
        f"""INSERT INTO character (annotation_id, name, kind, skeleton, emotions, source,
              status, version, updated_at)
            SELECT a.id, 'character 1', 'humanoid', '{skeleton}', '[]', 'human', '{status}', 1,
                   now()
            FROM annotation a WHERE {in_range} ORDER BY a.clip_id""",
        (clip_from, clip_to),
    )
    rows = conn.execute(
        f"""INSERT INTO track (character_id, num_points, source, status, version, updated_at)
            SELECT ch.id, {num_points}, 'human', '{status}', 1, now()
            FROM character ch JOIN annotation a ON a.id = ch.annotation_id
            WHERE {in_range} ORDER BY a.clip_id RETURNING id""",
        (clip_from, clip_to),
    ).fetchall()
    return sorted(r[0] for r in rows)


def clip_ids(conn: psycopg.Connection[Any], project_id: int) -> Iterator[int]:
    yield from (r[0] for r in conn.execute(
        "SELECT id FROM clip WHERE project_id = %s ORDER BY id", (project_id,)
    ))  # fmt: skip


def seed(clips: int, pose: int, frames: int, annotators: int) -> SeedInfo:
    url = recreate(DB_NAME)
    upgrade_database(url)
    engine = create_engine(url)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        project = project_service.create_project(s, "scale")
        pw = hash_password(PASSWORD)  # one hash: argon2 is slow on purpose
        people = (
            [User(username="admin", password_hash=pw, role=Role.admin)]
            + [User(username=f"rev{i:02d}", password_hash=pw, role=Role.reviewer)
               for i in range(4)]
            + [User(username=f"ann{i:02d}", password_hash=pw, role=Role.annotator)
               for i in range(annotators)]
        )  # fmt: skip
        s.add_all(people)
        s.flush()
        project_id = project.id
        ann_ids = [u.id for u in people if u.role == Role.annotator]
        ann_names = [u.username for u in people if u.role == Role.annotator]
        reviewer_names = [u.username for u in people if u.role == Role.reviewer]
    with psycopg.connect(raw_url(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        started = time.perf_counter()
        copy_clips(conn, project_id, 0, pose, frames, ["pose"])
        copy_clips(conn, project_id, pose, clips - pose, frames)
        conn.commit()
        timings["clips_copy"] = time.perf_counter() - started
        ids = list(clip_ids(conn, project_id))
        started = time.perf_counter()
        tracks = annotate(conn, ids[0], ids[pose - 1], status="approved", annotators=ann_ids,
                          skeleton="coco17", num_points=17)  # fmt: skip
        waiting_from = ids[pose]
        annotate(conn, waiting_from, ids[min(pose + REVIEW_WAITING, len(ids)) - 1], status="submitted",
                 annotators=ann_ids, skeleton=None, num_points=0)  # fmt: skip
        conn.commit()
        timings["annotations_insert_select"] = time.perf_counter() - started
        started = time.perf_counter()
        frame_rows = copy_frames(conn, tracks, pose_blobs(frames, 17))
        conn.commit()
        timings["keypoint_frames_copy"] = time.perf_counter() - started
        print(f"{frame_rows} keypoint frames in {timings['keypoint_frames_copy']:.1f} s",
              flush=True)  # fmt: skip
    started = time.perf_counter()
    with Session(engine) as s, s.begin():
        batch = service.create_batch(
            s, BatchCreate(name="scale", project_id=project_id,
                           filter=ClipFilter(state=ClipState.ready)),
        )  # fmt: skip
        sampling.assign_batch(
            s, batch.id, AssignConfig(annotators=ann_names, reviewers=reviewer_names,
                                      overlap_k=2, overlap_pct=20, seed=1),
        )  # fmt: skip
        batch_id = batch.id
    timings["batch"] = time.perf_counter() - started
    with psycopg.connect(raw_url(url)) as conn:
        started = time.perf_counter()
        # Approved work on the pose clips, submitted work waiting for review.
        conn.execute(
            """INSERT INTO assignment (batch_clip_id, clip_id, annotator_id, annotation_id,
                 state, assigned_at, started_at, submitted_at, completed_at)
               SELECT bc.id, a.clip_id, a.annotator_id, a.id,
                      CASE a.status WHEN 'approved' THEN 'approved' ELSE 'submitted' END,
                      a.created_at, a.created_at + interval '2 hours', a.submitted_at,
                      a.approved_at
               FROM annotation a JOIN batch_clip bc ON bc.clip_id = a.clip_id
               WHERE bc.batch_id = %s""",
            (batch_id,),
        )
        conn.execute(
            """UPDATE batch_clip SET handed_out = 1
               WHERE batch_id = %s AND clip_id IN (SELECT clip_id FROM assignment)""",
            (batch_id,),
        )
        conn.execute(
            """INSERT INTO agreement_score (project_id, clip_id, batch_id, level, metric,
                 against, annotation_a_id, annotator_a_id, annotator_b_id, value, detail,
                 annotation_versions, computed_at)
               SELECT %s, a.clip_id, %s, 'keypoints', 'oks', 'human', a.id, a.annotator_id,
                      %s, 0.5 + (a.id %% 50) / 100.0, '{}', '{}', now()
               FROM annotation a ORDER BY a.id LIMIT %s""",
            (project_id, batch_id, ann_ids[0], AGREEMENT_ROWS),
        )
        conn.commit()
        timings["assignments_insert_select"] = time.perf_counter() - started
        started = time.perf_counter()
        workspace = seed_workspace(conn, project_id, batch_id, clips, ann_ids)
        conn.commit()
        timings["workspace_clips"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    timings["vacuum_analyze"] = time.perf_counter() - started
    timings["total"] = time.perf_counter() - t0
    engine.dispose()
    info = SeedInfo(
        db_url=url, project_id=project_id, batch_id=batch_id, clips=clips, pose_clips=pose,
        frames_per_track=frames, admin="admin", annotators=ann_names, workspace=workspace,
        seconds={k: round(v, 1) for k, v in timings.items()},
    )  # fmt: skip
    WORK.mkdir(parents=True, exist_ok=True)
    SEED_FILE.write_text(json.dumps(asdict(info), indent=1))
    return info


def seed_workspace(conn: psycopg.Connection[Any], project_id: int, batch_id: int, start: int,
                   annotators: list[int]) -> list[dict[str, int]]:  # fmt: skip
    """One 300-frame clip per annotator with a draft 133-point track and its assignment."""
    copy_clips(conn, project_id, start, len(annotators), WORKSPACE_FRAMES, ["pose"])
    new = [r[0] for r in conn.execute(
        "SELECT id FROM clip WHERE project_id = %s ORDER BY id DESC LIMIT %s",
        (project_id, len(annotators)),
    )][::-1]  # fmt: skip
    tracks = annotate(conn, new[0], new[-1], status="draft", annotators=annotators,
                      skeleton="coco_wholebody", num_points=133)  # fmt: skip
    copy_frames(conn, tracks, pose_blobs(WORKSPACE_FRAMES, 133, variants=1))
    conn.execute(
        """INSERT INTO batch_clip (batch_id, clip_id, required_annotators, is_gold, handed_out,
             position) SELECT %s, id, 1, false, 1, id FROM clip WHERE id BETWEEN %s AND %s""",
        (batch_id, new[0], new[-1]),
    )
    rows = conn.execute(
        """INSERT INTO assignment (batch_clip_id, clip_id, annotator_id, annotation_id, state,
             leased_until, assigned_at, started_at)
           SELECT bc.id, a.clip_id, a.annotator_id, a.id, 'in_progress',
                  now() + interval '1 day', now(), now()
           FROM annotation a JOIN batch_clip bc ON bc.clip_id = a.clip_id AND bc.batch_id = %s
           WHERE a.clip_id BETWEEN %s AND %s
           RETURNING id, annotation_id, clip_id""",
        (batch_id, new[0], new[-1]),
    ).fetchall()
    track_of = dict(conn.execute(
        """SELECT ch.annotation_id, t.id FROM track t JOIN character ch ON ch.id = t.character_id
           WHERE t.id = ANY(%s)""", (tracks,),
    ).fetchall())  # fmt: skip
    return [
        {"assignment_id": a, "annotation_id": ann, "track_id": track_of[ann], "clip_id": c}
        for a, ann, c in sorted(rows, key=lambda r: r[2])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400_000)
    parser.add_argument("--pose", type=int, default=50_000)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--drop", action="store_true", help="drop the scale database and exit")
    args = parser.parse_args()
    if args.drop:
        drop()
        return
    info = seed(args.clips, args.pose, args.frames, args.annotators)
    print(json.dumps(info.seconds, indent=1))


if __name__ == "__main__":
    main()
