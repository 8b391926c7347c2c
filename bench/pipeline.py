"""Pre-annotation throughput and accuracy on seeded sample clips, in one worker process.

For the same clips: raw MediaPipe Holistic frames/s on frames decoded beforehand (the model
alone, every frame) against the keypoints step's and the pre-annotation steps' frames/s
(shots, keypoints, faces, caption, audio as the pipeline runs them: decoding, analysis, the
model once per drawing, database writes included), grouped by drawing timing; where the
keypoints step's time goes; then the drafts against the generator's truth: shot boundary F1,
held-frame accuracy, timing, keypoint PCK@0.1 where Holistic found a humanoid, and the point
error on the humanoid's held frames of the drafts (carried by the drawing's move) against
per-frame inference. The clips' held drawings stay put, slide, or go under camera pans and
zooms. Runs in embedded mode (SQLite in a temporary folder, steps run inline).

    .venv/bin/python bench/pipeline.py [--per-timing 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
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
EXPLANATION = [
    "What bounds the ratio: the model runs once per drawing, so frames / model calls is the "
    "ceiling (2.0 on twos, 1.1 on ones) with everything else free and a call as cheap as in "
    "the raw run. Decoding runs in the step's prefetch thread beside the model "
    "(app.core.prefetch; the loop waits only when that thread falls behind), and the drafts "
    "are the same to the byte as decoding each frame in turn (tests/pipeline/"
    "test_keypoints.py). The drawing follower stays on the loop: a frame's check compares "
    "it with the drawing the model last ran on, cropped around the points the model found "
    "there, and whether the next frame goes to the model depends on that check, so model "
    "call, box, follower start, check and next model call form one chain; only the check's "
    "box-independent parts (grey conversions, the camera's phase correlation, about a tenth "
    "of it) could run ahead. Overlap has little room anyway: Holistic runs its graph on two "
    "threads of its own and spends 44-63 ms of CPU on a frame (the CPU columns) that takes "
    "35-40 ms of wall time on a quiet machine, so it already keeps most of both cores busy. "
    "On a loaded machine no core is idle and wall times follow each thread's share of the "
    "cores, so the wall ratios swing from run to run (they can even order the timings "
    "wrongly) and the CPU ratio is the steadier guide. A model call in the step costs more "
    "than a raw call because the mapping to COCO-WholeBody (which the raw run does after its "
    "clock stops) and the decoding thread run with it. On ones the model runs on nearly "
    "every frame, and the follower's probes (every fifth frame) and the step's writes take "
    "the ratio to about 1.0; frames the follower carries win some back.",
]


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


def raw_holistic(path: Path) -> tuple[float, float, list[np.ndarray]]:
    """Holistic on every frame of a clip decoded beforehand (same settings as the step): its
    seconds, the process's CPU seconds (all threads) and the per-frame inference's poses
    (mapped after the clock stopped)."""
    from mediapipe.python.solutions.holistic import Holistic

    from app.media.decode import iter_frames
    from app.pipeline.mediapipe_map import holistic_to_coco_wholebody

    frames = list(iter_frames(path))
    with Holistic(
        static_image_mode=False, model_complexity=1, refine_face_landmarks=False
    ) as holistic:
        started, cpu = time.perf_counter(), time.process_time()
        results = [holistic.process(rgb) for rgb in frames]
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    height, width = frames[0].shape[:2]
    return seconds, cpu, [holistic_to_coco_wholebody(r, width, height) for r in results]


def clock_keypoints_step() -> dict[str, float]:
    """Time the parts of the keypoints step while the pipeline runs it: decoding (in the
    step's prefetch thread), the model loop's waits for a decoded frame, the drawing follower
    (check + start) and the whole extraction (wall, and the process's CPU over all threads),
    patched into app.pipeline.model_steps and app.pipeline.keypoints. Returns the running
    totals (seconds)."""
    import app.pipeline.keypoints as keypoints
    import app.pipeline.model_steps as steps
    from app.core.prefetch import prefetched
    from app.media.drawing_match import DrawingFollower
    from app.pipeline.keypoints import extract_keypoints

    spent: dict[str, float] = defaultdict(float)

    class TimedFollower(DrawingFollower):
        def check(self, index: int, rgb: Any) -> Any:
            started = time.perf_counter()
            move = super().check(index, rgb)
            spent["follower_s"] += time.perf_counter() - started
            return move

        def start(self, index: int, rgb: Any, box: Any) -> None:
            started = time.perf_counter()
            super().start(index, rgb, box)
            spent["follower_s"] += time.perf_counter() - started

    def timed(items: Iterator[Any], key: str) -> Iterator[Any]:
        """``items``, the time each takes to come out added to ``spent[key]``."""
        try:
            while True:
                started = time.perf_counter()
                item = next(items, None)
                spent[key] += time.perf_counter() - started
                if item is None:
                    return
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def timed_prefetched(items: Any, depth: int) -> Iterator[Any]:
        return timed(prefetched(items, depth), "wait_s")

    def timed_extract(frames: Any, **options: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return extract_keypoints(timed(iter(frames), "decode_s"), **options)
        finally:
            spent["extract_s"] += time.perf_counter() - started
            spent["extract_cpu_s"] += time.process_time() - cpu

    steps.DrawingFollower = TimedFollower  # type: ignore[misc]
    steps.extract_keypoints = timed_extract
    keypoints.prefetched = timed_prefetched  # type: ignore[assignment]
    return spent


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


def _humanoid(truth: dict[str, Any]) -> dict[str, Any] | None:
    """The clip's one humanoid (the bench clips hold at most one)."""
    return next((c for c in truth["characters"] if c["kind"] == "humanoid"), None)


def _point_errors(pose: np.ndarray, character: dict[str, Any], index: int) -> list[float]:
    """Distances of the labelled model points to the truth's, in % of the truth box diagonal."""
    box = character["boxes"][index]
    if box is None or not (pose[:, 2] > 0).any():
        return []
    gt = np.array(character["keypoints"][index], np.float32)
    both = (pose[:, 2] > 0) & (gt[:, 2] > 0)
    distance = np.linalg.norm(pose[both, :2] - gt[both, :2], axis=1)
    return list(100 * distance / float(np.hypot(box[2], box[3])))


def _held_frames(runs: list[Any]) -> set[int]:
    """Frames that show the drawing of the frame before (runs as DrawingRun JSON)."""
    return {i for run in runs for i in range(run["start"] + 1, run["end"])}


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
    drawings = {"carried": 0, "right": 0, "truth": 0, "timing": 0, "characters": 0}
    timing_right = 0
    pck_body: list[float] = []
    pck_whole: list[float] = []
    held_error: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    humanoid_frames = found_frames = 0
    clock = clock_keypoints_step()
    # A model worker imports MediaPipe once in its life, not in the first clip's step.
    importlib.import_module("mediapipe.python.solutions.holistic")
    importlib.import_module("mediapipe.python.solutions.face_mesh")
    for sample in clips:
        truth = sample.truth
        n = truth["frame_count"]
        human = _humanoid(truth)
        # Back to back per clip, so both see the same load on a shared machine.
        before = dict(clock)
        run_queued_inline([ids[sample.name]])
        parts = {k: v - before.get(k, 0.0) for k, v in clock.items()}
        raw_s, raw_cpu_s, per_frame = raw_holistic(sample.path)
        with session_scope() as session:
            clip = session.get_one(Clip, ids[sample.name])
            jobs = session.scalars(select(Job).where(Job.clip_id == clip.id)).all()
            steps_s = sum(j.duration_s or 0.0 for j in jobs if j.step in MODEL_STEPS)
            model_s = sum(j.duration_s or 0.0 for j in jobs if j.step in MODEL_QUEUE)
            keypoints = next(j for j in jobs if j.step == "keypoints")
            group = speed[truth["timing"]]
            group["frames"] += n
            group["raw_s"] += raw_s
            group["raw_cpu_s"] += raw_cpu_s
            group["pipeline_s"] += steps_s
            group["model_s"] += model_s
            group["keypoints_s"] += keypoints.duration_s or 0.0
            group["model_calls"] += keypoints.result.get("model_calls", n)
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
            character = session.scalars(
                select(Character).where(Character.annotation_id == annotation.id)
            ).first()
            track = session.scalars(
                select(Track).where(Track.character_id == character.id)
            ).first() if character else None  # fmt: skip
            poses = load_track_poses(session, track) if track else {}
            carried = _held_frames(character.drawing_runs) if character else set()
            character_timing = character.timing if character else None
        for key in ("decode_s", "wait_s", "follower_s", "extract_s", "extract_cpu_s"):
            group[key] += parts.get(key, 0.0)
        if human is not None and poses:
            truth_carried = _held_frames(human["drawing_runs"])
            drawings["carried"] += len(carried)
            drawings["right"] += len(carried & truth_carried)
            drawings["truth"] += len(truth_carried)
            drawings["timing"] += character_timing == human["timing"]
            drawings["characters"] += 1
            errors = held_error[truth["timing"]]
            for index in sorted(truth_carried):
                draft, every = (
                    _point_errors(poses[index], human, index),
                    _point_errors(per_frame[index], human, index),
                )
                if draft and every:  # frames where both found the humanoid
                    errors["drafts"] += draft
                    errors["per_frame"] += every
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
        "drawings": drawings,
        "held_error": held_error,
        "timing_right": timing_right,
        "clips": len(clips),
        "pck_body": float(np.nanmean(pck_body)) if pck_body else float("nan"),
        "pck_whole": float(np.nanmean(pck_whole)) if pck_whole else float("nan"),
        "humanoid_frames": humanoid_frames,
        "found_frames": found_frames,
    }


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2f}" if whole else "-"


def render(result: dict[str, Any], command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Date: {dt.date.today().isoformat()}  ",
        f"Machine: {machine()}, MediaPipe Holistic model_complexity=1, one process, "
        "embedded mode (SQLite)",
        "",
        "Raw = Holistic alone on frames decoded beforehand, every frame. Keypoints = the "
        "keypoints step's job duration (decoding, the drawing follower on every frame, Holistic "
        "once per drawing, carrying its result by the drawing's move, face smoothing, sanity "
        "checks, database writes). Model queue = keypoints + faces (what a `model` worker "
        "does). All steps = shots + keypoints + faces + caption + audio (probe and frame cache "
        "are ingestion, see that section). Each clip's steps and its raw run are timed back "
        "to back. Targets: keypoints ratio >= 2.0 on twos, >= 0.95 on ones.",
        "",
        "| timing | frames | model calls | raw frames/s | keypoints frames/s | ratio | "
        "model queue frames/s | ratio | all steps frames/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for timing in TIMINGS:
        g = result["speed"].get(timing)
        if not g:
            continue
        raw = g["frames"] / g["raw_s"]
        kp = g["frames"] / g["keypoints_s"]
        model = g["frames"] / g["model_s"]
        pipe = g["frames"] / g["pipeline_s"]
        lines.append(
            f"| {timing} | {g['frames']:.0f} | {g['model_calls']:.0f} | {raw:.1f} | {kp:.1f} | "
            f"{kp / raw:.2f} | {model:.1f} | {model / raw:.2f} | {pipe:.1f} | {pipe / raw:.2f} |"
        )
    lines += [
        "",
        "Where the keypoints step's time goes, ms per frame, timed inside the step runs above: "
        "decoding (in the step's prefetch thread, beside the model), the model loop's waits "
        "for a decoded frame, the drawing follower (check + start), the model (Holistic, "
        "mapping, carrying: the extraction minus the waits and the follower) and the rest of "
        "the step (face smoothing, sanity checks, database writes); then the CPU time of the "
        "process over all its threads (MediaPipe's, the decoder's, the prefetch thread) per "
        "frame, raw Holistic against the step's extraction, which the machine's load changes "
        "less than wall time:",
        "",
        "| timing | raw Holistic | keypoints step | decoding (thread) | waiting for frames | "
        "drawing follower | model | model, per call | rest of the step | CPU: raw | "
        "CPU: extraction | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for timing in TIMINGS:
        g = result["speed"].get(timing)
        if not g:
            continue
        ms = {k: 1000 * v / g["frames"] for k, v in g.items() if k.endswith("_s")}
        model_ms = ms["extract_s"] - ms["wait_s"] - ms["follower_s"]
        per_call = model_ms * g["frames"] / g["model_calls"]
        lines.append(
            f"| {timing} | {ms['raw_s']:.1f} | {ms['keypoints_s']:.1f} | {ms['decode_s']:.1f} | "
            f"{ms['wait_s']:.1f} | {ms['follower_s']:.1f} | {model_ms:.1f} | {per_call:.1f} | "
            f"{ms['keypoints_s'] - ms['extract_s']:.1f} | {ms['raw_cpu_s']:.1f} | "
            f"{ms['extract_cpu_s']:.1f} | {_share(ms['raw_cpu_s'], ms['extract_cpu_s'])} |"
        )
    lines += ["", *EXPLANATION]
    s, h, d = result["shots"], result["held"], result["drawings"]
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
        f"| humanoid's frames carried from its drawing: precision / recall "
        f"({d['truth']} truly held) | {_share(d['right'], d['carried'])} / "
        f"{_share(d['right'], d['truth'])} |",
        f"| model character's timing right, per clip | {d['timing']}/{d['characters']} |",
        f"| humanoid frames with a model pose | {result['found_frames']}/"
        f"{result['humanoid_frames']} |",
        f"| PCK@0.1 body (17 points), frames with a pose | {result['pck_body']:.3f} |",
        f"| PCK@0.1 whole body (133 points), frames with a pose | {result['pck_whole']:.3f} |",
        "",
        "Point error on the humanoid's held frames (every frame of a true held run after its "
        "first, where both found it), % of the truth box diagonal: the drafts (the drawing's "
        "result carried by its move) against Holistic run on every frame.",
        "",
        "| timing | points | drafts median | drafts p95 | per-frame median | per-frame p95 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for timing in TIMINGS:
        e = result["held_error"].get(timing)
        if not e or not e["drafts"]:
            continue
        ours, every = np.array(e["drafts"]), np.array(e["per_frame"])
        lines.append(
            f"| {timing} | {len(ours)} | {np.median(ours):.2f} | {np.percentile(ours, 95):.2f} "
            f"| {np.median(every):.2f} | {np.percentile(every, 95):.2f} |"
        )
    lines += [
        "",
        "PCK uses the truth humanoid nearest to the model's pose and the longest side of its "
        "labelled points' box; hidden truth points count, missing model points are wrong.",
        "",
    ]
    return "\n".join(lines)


def make_clips(folder: Path, per_timing: int, seed: int) -> list[Any]:
    """Pose clips (humanoids on every timing), 384-480 px, 4 s at 24 fps, 1-3 shots; held
    drawings stay put, slide, or go under a camera pan or zoom, in turn."""
    from app.samples.generator import make_clip
    from app.samples.sliding import DRAWING_MOTIONS

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
                    drawing_motion=DRAWING_MOTIONS[i % len(DRAWING_MOTIONS)],
                )
            )  # fmt: skip
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-timing", type=int, default=4)
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
