"""Export throughput and peak memory for synthetic pose clips (1k and 10k by default).

For each size a scratch PostgreSQL database is seeded with bulk inserts (one approved primary
annotation per clip, one 133-point COCO-WholeBody track of ``--frames`` frames, captions),
then a fresh child process builds one snapshot and reports wall time and its peak RSS
(``resource.getrusage``), so seeding never inflates the measured memory:
    .venv/bin/python bench/export.py [--sizes 1000,10000] [--frames 30]
With ``--with-frames`` each size is built twice, without and with the frame images (every
clip's frame cache is a link to one cache of a synthetic 1280x720 video, so the images are
copied from a cache, as in a real instance):
    .venv/bin/python bench/export.py --sizes 200 --frames 120 --with-frames
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FORMATS = ["coco_wholebody", "coco_person", "captions", "manifests", "cellabel"]
BATCH = 5000


def db_url(size: int) -> str:
    return PG.rsplit("/", 1)[0] + f"/cellabel_bench_export_{size}"


def seed(size: int, frames: int) -> None:
    """A fresh database with ``size`` approved pose clips, written with bulk inserts."""
    import numpy as np
    from sqlalchemy import create_engine, insert

    from app.annotations.models import Annotation, Caption, Character, KeypointFrame, Shot, Track
    from app.annotations.points import encode_points
    from app.auth.models import User
    from app.clips.models import Clip
    from app.core.migrate import upgrade_database
    from app.projects.models import Project
    from bench._report import recreate_database

    url = db_url(size)
    recreate_database(url.rsplit("/", 1)[1])
    upgrade_database(url)
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(64):
        pose = np.zeros((133, 4), dtype=np.float32)
        pose[:, 0], pose[:, 1] = rng.uniform(0, 1280, 133), rng.uniform(0, 720, 133)
        pose[:, 2] = rng.choice([0, 1, 2], 133, p=[0.1, 0.2, 0.7])
        pose[:, 3] = rng.uniform(0.3, 1, 133)
        pose[pose[:, 2] == 0] = 0
        blobs.append(encode_points(pose))
    engine = create_engine(url)
    with engine.begin() as conn:
        project_id = conn.execute(
            insert(Project).values(name="bench", subsets=["pose", "i2v"], tag_vocabulary={},
                                   emotion_labels=[], rejection_reasons=[], required_levels={},
                                   quality_thresholds={}).returning(Project.id)
        ).scalar_one()  # fmt: skip
        user_id = conn.execute(
            insert(User).values(username="ann", password_hash="x", role="annotator")
            .returning(User.id)
        ).scalar_one()  # fmt: skip
        for start in range(0, size, 1000):
            n = min(1000, size - start)
            clips = conn.execute(
                insert(Clip).returning(Clip.id, sort_by_parameter_order=True),
                [{"project_id": project_id, "filename": f"clip{start + i}.mp4",
                  "storage_key": f"clips/{project_id}/{start + i}/source.mp4",
                  "content_hash": hashlib.sha256(b"%d" % (start + i)).hexdigest(), "subsets": ["pose", "i2v"],
                  "state": "ready", "width": 1280, "height": 720, "fps": 12.0,
                  "frame_count": frames, "duration_s": frames / 12}
                 for i in range(n)],
            ).scalars().all()  # fmt: skip
            anns = conn.execute(
                insert(Annotation).returning(Annotation.id, sort_by_parameter_order=True),
                [{"clip_id": c, "kind": "human", "annotator_id": user_id, "is_primary": True,
                  "status": "approved", "tags": {"count": "solo"}, "quality": {"keep": True}}
                 for c in clips],
            ).scalars().all()  # fmt: skip
            conn.execute(insert(Shot), [
                {"annotation_id": a, "start_frame": 0, "end_frame": frames, "source": "human"}
                for a in anns])  # fmt: skip
            conn.execute(insert(Caption), [
                {"annotation_id": a, "level": "clip", "target_id": 0, "field": "short",
                 "text": f"A figure dances in clip {a}."} for a in anns])  # fmt: skip
            chars = conn.execute(
                insert(Character).returning(Character.id, sort_by_parameter_order=True),
                [{"annotation_id": a, "name": "character 1", "kind": "humanoid",
                  "skeleton": "coco_wholebody", "emotions": [], "source": "human"}
                 for a in anns],
            ).scalars().all()  # fmt: skip
            tracks = (
                conn.execute(
                    insert(Track).returning(Track.id, sort_by_parameter_order=True),
                    [{"character_id": c, "num_points": 133, "source": "human"} for c in chars],
                )
                .scalars()
                .all()
            )
            rows = [{"track_id": t, "frame_index": f, "points": blobs[(t + f) % len(blobs)],
                     "flags": []} for t in tracks for f in range(frames)]  # fmt: skip
            for i in range(0, len(rows), BATCH):
                conn.execute(insert(KeypointFrame), rows[i : i + BATCH])


def proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> None:
    """Linux: make VmHWM (peak RSS) start again from the current RSS, so the peak measured is
    the build's own, not the imports' or set-up's."""
    Path("/proc/self/clear_refs").write_text("5")


def link_frame_caches(size: int, frames: int) -> None:
    """One frame cache of a synthetic 1280x720 video, linked as every seeded clip's cache."""
    from fractions import Fraction

    import av
    import numpy as np
    from sqlalchemy import create_engine, select

    from app.clips.models import Clip
    from app.media.framecache import build_frame_cache

    root = ROOT / "bench" / ".work" / f"export-{size}"
    video, cache = root / "bench-frames.mp4", root / "bench-frames"
    root.mkdir(parents=True, exist_ok=True)
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(frames):
            rgb = np.full((720, 1280, 3), (110, 170, 235), np.uint8)
            rgb[480:] = (70, 150, 60)
            rgb[300:420, 100 + i * 8 : 220 + i * 8] = (230, 60, 50)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 12)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    build_frame_cache(video, cache)
    with create_engine(db_url(size)).connect() as conn:
        for clip_id, project_id in conn.execute(select(Clip.id, Clip.project_id)):
            folder = root / "clips" / str(project_id) / str(clip_id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "frames").unlink(missing_ok=True)
            (folder / "frames").symlink_to(cache)


def child(size: int, frames: bool) -> None:
    """Build one snapshot of the seeded database; print the measurements as JSON."""
    os.environ["DATABASE_URL"] = db_url(size)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ["MEDIA_ROOT"] = str(ROOT / "bench" / ".work" / f"export-{size}")
    from app.core.db import session_scope
    from app.export import build, service
    from app.export.options import ExportOptions
    from app.export.schemas import ExportCreate
    from app.projects.service import get_project_by_name

    with session_scope() as session:
        project = get_project_by_name(session, "bench")
        data = ExportCreate(project_id=project.id, name=f"bench-{time.time_ns()}", formats=FORMATS,
                            options=ExportOptions(frames=frames))  # fmt: skip
        snapshot_id = service.create_export(session, data, None, send=False).id
    reset_peak()
    start_rss = proc_status_kb("VmRSS")
    t0 = time.perf_counter()
    state = build.run_build(snapshot_id)
    seconds = time.perf_counter() - t0
    with session_scope() as session:
        snap = service.get_export(session, snapshot_id)
        size_bytes = snap.size_bytes
        clips = len(snap.annotation_versions)
        service.archive_path(snap).unlink()
    peak = proc_status_kb("VmHWM")
    print(json.dumps({"state": state, "seconds": seconds, "clips": clips, "zip_bytes": size_bytes,
                      "rss_before_mb": start_rss / 1024, "peak_rss_mb": peak / 1024}))  # fmt: skip


def measure(size: int, *, frames: bool) -> dict[str, Any]:
    """Build in a fresh child process; its measurements."""
    command = [sys.executable, __file__, "--child", str(size)]
    out = subprocess.run([*command, *(["--child-frames"] if frames else [])], check=True,
                         capture_output=True, text=True)  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["state"] == "done" and result["clips"] == size, result
    print(size, "frames" if frames else "no frames", result, flush=True)
    return result


def frames_bench(args: argparse.Namespace) -> None:
    """Each size without and with the frame images: clips/s and peak memory side by side."""
    from bench._report import write_section

    lines = []
    for size in [int(s) for s in args.sizes.split(",")]:
        seed(size, args.frames)
        link_frame_caches(size, args.frames)
        for frames in (False, True):
            r = measure(size, frames=frames)
            lines.append(
                f"| {size:,} | {args.frames} | {'yes' if frames else 'no'} | {r['seconds']:.1f} "
                f"| {size / r['seconds']:.1f} | {r['zip_bytes'] / 1e6:.0f} "
                f"| {r['peak_rss_mb']:.0f} |"
            )
    body = f"""
The same synthetic pose clips as above (formats {", ".join(FORMATS)}), built without and with
the annotated frames' images (`frames` option). Every clip's frame cache is a link to one
cache of a synthetic 1280x720 video, so the images are copied from a cache as on an instance
where the pipeline ran (JPEG quality 88, the cache's).

| clips | frames per clip | images | wall s | clips/s | zip MB | peak RSS MB |
|---:|---:|:---:|---:|---:|---:|---:|
{chr(10).join(lines)}

Load: {args.load}. Each image is read and written one at a time, so the images add a fixed
amount of memory, not one that grows with the number of frames.
The synthetic frames are flat colours, so their JPEGs (17 kB each) deflate far better than
real frames would: expect a real snapshot's zip to grow by about the frame cache's size.
"""
    write_section("Export with frames", body, f"python bench/export.py --sizes {args.sizes} "
                  f"--frames {args.frames} --with-frames")  # fmt: skip
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--with-frames", action="store_true")
    parser.add_argument("--load", default="nothing else running", help="what else ran meanwhile")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-frames", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_frames)
        return
    if args.with_frames:
        frames_bench(args)
        return
    from app.export.snapshot import CHUNK
    from bench._report import write_section

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        t0 = time.perf_counter()
        seed(size, args.frames)
        print(f"seeded {size} clips in {time.perf_counter() - t0:.0f} s", flush=True)
        rows.append((size, measure(size, frames=False)))
    table = "\n".join(
        f"| {size:,} | {size * args.frames:,} | {r['seconds']:.1f} | {size / r['seconds']:.0f} "
        f"| {size * args.frames / r['seconds']:,.0f} | {r['zip_bytes'] / 1e6:.0f} "
        f"| {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        for size, r in rows
    )
    body = f"""
One snapshot built by the export task body (`app.export.build.run_build`) in a fresh process
per size, on PostgreSQL on the same machine. Synthetic pose clips: one approved primary
annotation each with one COCO-WholeBody track of {args.frames} frames (133 points), a shot and
a clip caption. Formats: {", ".join(FORMATS)} (written to a staging folder, then zipped).
"RSS before" is the child's resident memory after imports and set-up; "peak RSS" is its
`VmHWM` during the build (reset just before it through `/proc/self/clear_refs`).

| clips | frames | wall s | clips/s | frames/s | zip MB | RSS before MB | peak RSS MB |
|---:|---:|---:|---:|---:|---:|---:|---:|
{table}

Peak memory stays flat as the snapshot grows: clips are read {CHUNK} at a time and every format
is streamed to disk (COCO annotations wait in a temporary file, not in memory). The only
per-clip state kept is the `{{annotation id: version}}` map recorded on the snapshot.
"""
    write_section("Export throughput and memory", body, "python bench/export.py")
    print(body)


if __name__ == "__main__":
    main()
