"""Pre-annotation throughput and accuracy on seeded sample clips, in one worker process.

For the same clips: raw MediaPipe Holistic frames/s on frames decoded beforehand (the model
alone, every frame) against the pre-annotation steps' frames/s (shots, keypoints, faces,
caption, audio as the pipeline runs them: decoding, analysis, held-frame reuse and database
writes included), grouped by drawing timing; then the drafts against the generator's truth:
shot boundary F1, held-frame accuracy, timing, and keypoint PCK@0.1 where Holistic found a
humanoid. Runs in embedded mode (SQLite in a temporary folder, steps run inline).

    .venv/bin/python bench/pipeline.py [--per-timing 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTION = "## Pre-annotation throughput and accuracy"
MODEL_STEPS = ("shots", "keypoints", "faces", "caption", "audio")
MODEL_QUEUE = ("keypoints", "faces")
TIMINGS = ("ones", "twos", "threes")


@contextmanager
def embedded_app(folder: Path) -> Iterator[None]:
    """Point CelLabel at an empty embedded data folder (before any app module is imported)."""
    for key in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
        os.environ.pop(key, None)
    os.environ["DATA_DIR"] = str(folder)
    from app.core.migrate import upgrade_database

    upgrade_database()
    yield


def machine() -> str:
    return (
        f"{platform.machine()} Linux, {os.cpu_count()} cores shared with other jobs (load "
        f"average {os.getloadavg()[0]:.1f} at start), Python {platform.python_version()}"
    )


def write_section(path: Path, section: str, text: str) -> None:
    """Replace ``section`` (up to the next ``## ``) in BENCHMARKS.md, or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(section) + r".*?(?=^## |\Z)", re.S | re.M)
    new = (
        pattern.sub(lambda _: text + "\n", old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + text
    )
    path.write_text(new.rstrip() + "\n")


def import_clips(folder: Path, project_name: str) -> dict[str, int]:
    """Import every sample of ``folder`` through its manifest (steps queued, not run)."""
    from app.core.db import session_scope
    from app.pipeline.intake import import_manifest
    from app.projects.service import create_project
    from app.samples.manifest import write_samples_manifest

    with session_scope() as session:
        project = create_project(session, project_name)
        outcomes = import_manifest(session, project, write_samples_manifest(folder))
    return {Path(o.name).stem: o.clip_id for o in outcomes if o.clip_id is not None}


def raw_holistic_seconds(path: Path) -> tuple[float, int]:
    """Holistic on every frame of a clip decoded beforehand (same settings as the step)."""
    from mediapipe.python.solutions.holistic import Holistic

    from app.media.decode import iter_frames

    frames = list(iter_frames(path))
    with Holistic(
        static_image_mode=False, model_complexity=1, refine_face_landmarks=False
    ) as holistic:
        started = time.perf_counter()
        for rgb in frames:
            holistic.process(rgb)
        return time.perf_counter() - started, len(frames)


def _nearest_humanoid(truth: dict[str, Any], index: int, pose: np.ndarray) -> np.ndarray | None:
    """The truth humanoid whose box centre is nearest the model's visible points."""
    seen = pose[pose[:, 2] == 2, :2]
    if not len(seen):
        return None
    best: tuple[float, np.ndarray] | None = None
    for character in truth["characters"]:
        box = character["boxes"][index]
        if character["kind"] != "humanoid" or box is None:
            continue
        centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
        distance = float(np.linalg.norm(seen.mean(axis=0) - centre))
        if best is None or distance < best[0]:
            best = (distance, np.array(character["keypoints"][index], np.float32))
    return None if best is None else best[1]


def evaluate(clips: list[Any], ids: dict[str, int]) -> dict[str, Any]:
    """Throughput per timing and accuracy of the drafts against the truth."""
    from sqlalchemy import select

    from app.agreement.metrics import boundary_prf, pck, shots_to_boundaries
    from app.annotations.drafts import load_track_poses, model_annotation
    from app.annotations.models import Character, Shot, Track
    from app.clips.models import Clip
    from app.core.db import session_scope
    from app.pipeline.held import drawn_frames
    from app.pipeline.models import Job
    from app.pipeline.runner import run_queued_inline

    speed: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shots = {"matched": 0, "ref": 0, "hyp": 0}
    held = {"right": 0, "total": 0}
    timing_right = 0
    pck_body: list[float] = []
    pck_whole: list[float] = []
    humanoid_frames = found_frames = 0
    for sample in clips:
        truth = sample.truth
        n = truth["frame_count"]
        # Back to back per clip, so both see the same load on a shared machine.
        run_queued_inline([ids[sample.name]])
        raw_s, _ = raw_holistic_seconds(sample.path)
        with session_scope() as session:
            clip = session.get_one(Clip, ids[sample.name])
            jobs = session.scalars(select(Job).where(Job.clip_id == clip.id)).all()
            steps_s = sum(j.duration_s or 0.0 for j in jobs if j.step in MODEL_STEPS)
            model_s = sum(j.duration_s or 0.0 for j in jobs if j.step in MODEL_QUEUE)
            calls = next(j.result.get("model_calls", n) for j in jobs if j.step == "keypoints")
            group = speed[truth["timing"]]
            group["frames"] += n
            group["raw_s"] += raw_s
            group["pipeline_s"] += steps_s
            group["model_s"] += model_s
            group["model_calls"] += calls
            annotation = model_annotation(session, clip)
            spans = session.scalars(
                select(Shot).where(Shot.annotation_id == annotation.id).order_by(Shot.start_frame)
            ).all()
            prf = boundary_prf(
                shots_to_boundaries(truth["shots"]),
                shots_to_boundaries([(s.start_frame, s.end_frame) for s in spans]),
                tolerance=2,
            )
            shots["matched"] += prf.matched
            shots["ref"] += prf.n_reference
            shots["hyp"] += prf.n_hypothesis
            true_held = set(range(n)) - set(drawn_frames(truth["held_runs"], n))
            found_held = set(range(n)) - set(drawn_frames(clip.held_runs, n))
            held["right"] += n - len(true_held ^ found_held)
            held["total"] += n
            timing_right += clip.detected_timing == truth["timing"]
            track = session.scalars(
                select(Track).join(Character).where(Character.annotation_id == annotation.id)
            ).first()
            poses = load_track_poses(session, track) if track else {}
        for index in range(n):
            in_view = any(
                c["kind"] == "humanoid" and c["boxes"][index] is not None
                for c in truth["characters"]
            )
            humanoid_frames += in_view
            pose = poses.get(index)
            if pose is None or not in_view or not (pose[:17, 2] > 0).any():
                continue
            gt = _nearest_humanoid(truth, index, pose)
            if gt is None:
                continue
            found_frames += 1
            pck_body.append(pck(gt[:17], pose[:17, :3], 0.1))
            pck_whole.append(pck(gt, pose[:, :3], 0.1))
    return {
        "speed": speed,
        "shots": shots,
        "held": held,
        "timing_right": timing_right,
        "clips": len(clips),
        "pck_body": float(np.nanmean(pck_body)) if pck_body else float("nan"),
        "pck_whole": float(np.nanmean(pck_whole)) if pck_whole else float("nan"),
        "humanoid_frames": humanoid_frames,
        "found_frames": found_frames,
    }


def render(result: dict[str, Any], command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Date: {dt.date.today().isoformat()}  ",
        f"Machine: {machine()}, MediaPipe Holistic model_complexity=1, one process, "
        "embedded mode (SQLite)",
        "",
        "Raw = Holistic alone on frames decoded beforehand, every frame. Model queue = the job "
        "durations of keypoints + faces (what a `model` worker does: decoding, Holistic on "
        "drawn frames only, sanity checks, database writes). All steps = shots + keypoints + "
        "faces + caption + audio (probe and frame cache are ingestion, see that section). "
        "Each clip's steps and its raw run are timed back to back.",
        "",
        "| timing | frames | model calls | raw frames/s | model queue frames/s | ratio | "
        "all steps frames/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for timing in TIMINGS:
        g = result["speed"].get(timing)
        if not g:
            continue
        raw = g["frames"] / g["raw_s"]
        model = g["frames"] / g["model_s"]
        pipe = g["frames"] / g["pipeline_s"]
        lines.append(
            f"| {timing} | {g['frames']:.0f} | {g['model_calls']:.0f} | {raw:.1f} | "
            f"{model:.1f} | {model / raw:.2f} | {pipe:.1f} | {pipe / raw:.2f} |"
        )
    s, h = result["shots"], result["held"]
    precision = s["matched"] / s["hyp"] if s["hyp"] else 1.0
    recall = s["matched"] / s["ref"] if s["ref"] else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    lines += [
        "",
        "| accuracy against the generator's truth | value |",
        "|---|---:|",
        f"| shot boundaries, ±2 frames: precision / recall / F1 ({s['ref']} cuts) | "
        f"{precision:.2f} / {recall:.2f} / {f1:.2f} |",
        f"| held-frame labels, per frame ({h['total']} frames) | {h['right'] / h['total']:.3f} |",
        f"| drawing timing (ones/twos/threes), per clip | "
        f"{result['timing_right']}/{result['clips']} |",
        f"| humanoid frames with a model pose | {result['found_frames']}/"
        f"{result['humanoid_frames']} |",
        f"| PCK@0.1 body (17 points), frames with a pose | {result['pck_body']:.3f} |",
        f"| PCK@0.1 whole body (133 points), frames with a pose | {result['pck_whole']:.3f} |",
        "",
        "PCK uses the truth humanoid nearest to the model's pose and the longest side of its "
        "labelled points' box; hidden truth points count, missing model points are wrong.",
        "",
    ]
    return "\n".join(lines)


def make_clips(folder: Path, per_timing: int, seed: int) -> list[Any]:
    """Pose clips (humanoids on every timing), 384-480 px, 4 s at 24 fps, 1-3 shots."""
    from app.samples.generator import make_clip

    rng = np.random.default_rng(seed)
    clips = []
    for timing in TIMINGS:
        for i in range(per_timing):
            kinds = [("humanoid",), ("humanoid", "animal"), ("humanoid", "object")][i % 3]
            clips.append(
                make_clip(
                    folder, f"{timing}_{i}", seed=seed * 1000 + len(clips), width=int(
                        rng.choice([384, 480])), fps=24, seconds=4.0, subsets=("pose", "i2v"),
                    kinds=kinds, timing=timing,
                )
            )  # fmt: skip
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-timing", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args()
    command = (
        f".venv/bin/python bench/pipeline.py --per-timing {args.per_timing} --seed {args.seed}"
    )
    with tempfile.TemporaryDirectory() as tmp, embedded_app(Path(tmp) / "data"):
        clips = make_clips(Path(tmp) / "clips", args.per_timing, args.seed)
        ids = import_clips(Path(tmp) / "clips", "bench-pipeline")
        text = render(evaluate(clips, ids), command)
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
