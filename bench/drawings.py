"""Per-character held drawings on generated clips: slides, pans and zooms over held drawings.

    .venv/bin/python bench/drawings.py [--seeds 0-2] [--seconds 3]

For every drawing motion (``held``: the camera moves only with a new drawing, ``slide``,
``pan``, ``zoom``: on ones over the held drawings; app/samples/sliding.py) and every timing
(ones, twos, threes), each seed renders one 640x360 clip with random characters and actions.
``app.media.drawing_match.find_drawings`` runs per character on the decoded frames with the
truth boxes; its held frames are scored against the truth (app/samples/drawing_score.py)
beside the whole-frame detector (app/pipeline/held.py) given the same frames. Writes the
``## Per-character held drawings`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.media.decode import iter_frames  # noqa: E402
from app.media.drawing_match import find_drawings  # noqa: E402
from app.media.drawings import DrawingRun, runs_from_json  # noqa: E402
from app.media.timing import drawing_timing  # noqa: E402
from app.pipeline.held import detect_held_runs  # noqa: E402
from app.samples.drawing_score import DrawingScore, held_frames, score_character  # noqa: E402
from app.samples.generator import make_clip  # noqa: E402
from app.samples.sliding import DRAWING_MOTIONS  # noqa: E402
from bench._report import seeds_of, write_section  # noqa: E402

TIMINGS = ("ones", "twos", "threes")


def _row(
    name: str, mine: DrawingScore, whole: DrawingScore, timing: list[bool], split: list[int]
) -> str:
    errors = mine.move_errors or [0.0]
    same_found, same, redrawn_found, redrawn = split
    return (
        f"| {name} | {mine.true_positive + mine.false_negative} | {mine.precision:.3f} | "
        f"{mine.recall:.3f} | {_share(same_found, same)} | "
        f"{_share(redrawn_found, redrawn)} ({redrawn}) | "
        f"{whole.precision:.3f} | {whole.recall:.3f} | "
        f"{np.median(errors):.2f} / {np.percentile(errors, 95):.2f} | "
        f"{sum(timing)}/{len(timing)} |"
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def _new_drawing(frame: int, shots: list[tuple[int, int]], timing: str) -> bool:
    """Did the generator draw a new pose on ``frame`` (timing counts from each shot's start)?"""
    start = next(a for a, b in shots if a <= frame < b)
    hold = {"ones": 1, "twos": 2, "threes": 3}[timing]
    return frame == start or (frame - start) % hold == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    load = os.getloadavg()[0]
    mine: dict[str, DrawingScore] = defaultdict(DrawingScore)
    whole: dict[str, DrawingScore] = defaultdict(DrawingScore)
    timing: dict[str, list[bool]] = defaultdict(list)
    # held frames showing the very drawing of the frame before / a drawing redrawn < 2 px
    split: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    seconds_per_frame: list[float] = []  # wall clock
    cpu_per_frame: list[float] = []  # this process's CPU time (the machine is shared)
    with tempfile.TemporaryDirectory() as tmp:
        for motion in DRAWING_MOTIONS:
            for clip_timing in TIMINGS:
                for seed in seeds_of(args.seeds):
                    clip = make_clip(
                        tmp, f"{motion}_{clip_timing}_{seed}", seed=1000 + seed,
                        width=640, aspect=16 / 9, seconds=args.seconds, timing=clip_timing,
                        drawing_motion=motion, subsets=("pose", "i2v"),
                    )  # fmt: skip
                    truth = clip.truth
                    frames = list(iter_frames(clip.path))
                    n = truth["frame_count"]
                    whole_runs = [DrawingRun.still(a, b) for a, b in detect_held_runs(frames).runs]
                    static = all(c["motion"] == "static" for c in truth["camera"])
                    shots = [(a, b) for a, b in truth["shots"]]
                    for character in truth["characters"]:
                        boxes = [tuple(b) if b else None for b in character["boxes"]]
                        started, cpu = time.perf_counter(), time.process_time()
                        runs = find_drawings(frames, boxes, shots)  # type: ignore[arg-type]
                        seconds_per_frame.append((time.perf_counter() - started) / n)
                        cpu_per_frame.append((time.process_time() - cpu) / n)
                        visible = [b is not None for b in boxes]
                        right = drawing_timing(runs, n, visible) == character["timing"]
                        groups = [
                            "all",
                            motion if motion != "held" or not static else "held, static camera",
                            f"{motion}, on {clip_timing}",
                            f"action: {character['kind']} {character['motion']}",
                            "on ones" if clip_timing == "ones" else "on twos and threes",
                        ]
                        if motion == "held" and not static:
                            groups[1] = "held, camera moves per drawing"
                        true_held = held_frames(runs_from_json(character["drawing_runs"]))
                        found = held_frames(runs)
                        for group in groups:
                            for frame in (f for f in true_held if visible[f]):
                                redrawn = 2 if _new_drawing(frame, shots, clip_timing) else 0
                                split[group][redrawn + 1] += 1
                                split[group][redrawn] += frame in found
                            mine[group].add(score_character(character, runs))
                            whole[group].add(score_character(character, whole_runs))
                            timing[group].append(right)
                    clip.path.unlink()
    ms, cpu_ms = 1000 * np.asarray(seconds_per_frame), 1000 * np.asarray(cpu_per_frame)
    header = (
        "| frames of | held frames (truth) | precision | recall | recall, same drawing moved | "
        "recall, redrawn < 2 px (frames) | whole-frame precision | whole-frame recall | "
        "move error px (median / p95) | timing right |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    order = sorted(
        mine, key=lambda g: (g != "all", not g.startswith("on "), g.startswith("action"), g)
    )
    body = (
        f"Load average at start: {load:.1f}. Clips: 640x360, {args.seconds:g} s, seeds "
        f"{args.seeds} for each drawing motion x timing; characters and their actions drawn from "
        "the seed; boxes from the truth. A frame is held when it shows the drawing of the frame "
        "before; the truth holds a drawing while the character's visible landmarks are the run's "
        "first ones moved by a scale + translation within 2 px. Move error: box corners placed "
        "by the detected move against the true move. *Same drawing moved*: held frames where the "
        "generator drew the very drawing of the frame before; *redrawn < 2 px*: held frames "
        "where it drew a new pose that the 2 px rule merges into the run (a pose that barely "
        "changed); the detector calls most of these new drawings, which only costs a model "
        "call.\n\n"
        f"{header}\n"
        + "\n".join(_row(g, mine[g], whole[g], timing[g], split[g]) for g in order)
        + "\n\n"
        f"Time per frame and character (find_drawings, one process, OpenCV on one thread): wall "
        f"median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms; CPU median "
        f"{np.median(cpu_ms):.1f} ms, p95 {np.percentile(cpu_ms, 95):.1f} ms over {len(ms)} "
        f"character tracks. Load average at the end: {os.getloadavg()[0]:.1f}."
    )
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(body)
    write_section("Per-character held drawings", body, command)


if __name__ == "__main__":
    main()
