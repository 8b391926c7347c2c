"""Ingest throughput on seeded sample clips, in one worker process (embedded mode).

Ingestion = import (hash + copy into storage) + ``probe`` + ``frames`` (frame-exact JPEG
cache, H.264 preview, thumbnail, filmstrip). Reports clips per minute end to end and decoded
frames per second of the frame step, which decodes every frame once.

    .venv/bin/python bench/ingest.py [--count 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import ROOT, embedded_app, machine, write_section

SECTION = "## Ingest throughput"
INGEST_STEPS = ("probe", "frames")


def run(count: int, seed: int, folder: Path) -> dict[str, float]:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.pipeline.intake import import_paths
    from app.pipeline.models import Job, JobState
    from app.pipeline.runner import run_job
    from app.projects.service import create_project
    from app.samples.generator import make_samples

    clips = make_samples(folder / "clips", count, seed)
    started = time.perf_counter()
    with session_scope() as session:
        project = create_project(session, "bench-ingest")
        outcomes = import_paths(session, project, [c.path for c in clips])
    imported = time.perf_counter()
    ids = [o.clip_id for o in outcomes if o.clip_id is not None]
    for step in INGEST_STEPS:
        with session_scope() as session:
            jobs = session.scalars(select(Job.id).where(Job.clip_id.in_(ids), Job.step == step))
            job_ids = list(jobs)
        for job_id in job_ids:
            run_job(job_id)
    total = time.perf_counter() - started
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.clip_id.in_(ids))).all()
        by_step = {
            step: sum(j.duration_s or 0.0 for j in jobs if j.step == step) for step in INGEST_STEPS
        }
        failed = sum(1 for j in jobs if j.step in INGEST_STEPS and j.state != JobState.done)
    frames = sum(c.truth["frame_count"] for c in clips)
    return {
        "clips": len(ids),
        "frames": frames,
        "pixels": sum(c.truth["width"] * c.truth["height"] for c in clips) / len(clips),
        "import_s": imported - started,
        "probe_s": by_step["probe"],
        "frames_s": by_step["frames"],
        "total_s": total,
        "failed": failed,
    }


def render(r: dict[str, float], command: str) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `{command}`  ",
            f"Date: {dt.date.today().isoformat()}  ",
            f"Machine: {machine()}, one process, embedded mode (SQLite, steps run inline)",
            "",
            f"{r['clips']:.0f} clips, {r['frames']:.0f} frames, mean frame size "
            f"{r['pixels'] / 1000:.0f} kpx (`make_samples`: 320-640 px wide, 2-5 s); "
            f"{r['failed']:.0f} ingest jobs failed.",
            "",
            "| stage | seconds | throughput |",
            "|---|---:|---:|",
            f"| import (hash, copy, queue) | {r['import_s']:.2f} | "
            f"{60 * r['clips'] / r['import_s']:.0f} clips/min |",
            f"| probe | {r['probe_s']:.2f} | {60 * r['clips'] / r['probe_s']:.0f} clips/min |",
            f"| frames (decode, JPEG cache, preview, filmstrip) | {r['frames_s']:.2f} | "
            f"{r['frames'] / r['frames_s']:.0f} decoded frames/s |",
            f"| end to end | {r['total_s']:.2f} | {60 * r['clips'] / r['total_s']:.1f} clips/min, "
            f"{r['frames'] / r['total_s']:.0f} frames/s |",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    command = f".venv/bin/python bench/ingest.py --count {args.count} --seed {args.seed}"
    with tempfile.TemporaryDirectory() as tmp, embedded_app(Path(tmp) / "data"):
        text = render(run(args.count, args.seed, Path(tmp)), command)
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
