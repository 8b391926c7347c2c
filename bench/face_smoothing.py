"""Face point jitter before and after the One Euro smoothing, on generated face clips.

Each clip goes through the keypoints extraction three ways: per frame (the model on every
frame but whole-frame repeats, as the step runs on face clips), smoothed (per frame, then
app.pipeline.smoothing.smooth_faces: what the step writes on face clips) and per drawing (the
drawing follower carries held drawings, as on pose clips); Holistic with the FaceMesh
fallback, shots from the truth. Their face points are compared with the generator's truth. Jitter is the mean
frame-to-frame residual of a point's motion against the truth point's own motion (px), over
consecutive frames of a shot where both see the point; "at rest" keeps the pairs where the
truth point moved less than half a pixel. Error is the distance to the truth point in % of
the face box's long side.

    .venv/bin/python bench/face_smoothing.py [--per-timing 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402

TITLE = "Face point smoothing"
TIMINGS = ("ones", "twos", "threes")
AT_REST_PX = 0.5
VARIANTS = ("per frame", "smoothed", "per drawing")


def face_measures(truth: dict[str, Any], frames: list[Any]) -> dict[str, list[float]]:
    """Residuals (all, at rest) and errors of the model's face points against the truth."""
    from app.pipeline.smoothing import FACE_POINTS

    [person] = [c for c in truth["characters"] if c["kind"] == "humanoid"]
    cuts = {start for start, _ in truth["shots"]}
    out: dict[str, list[float]] = {"jitter": [], "rest": [], "error": []}
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for f in frames:
        gt = np.array(person["keypoints"][f.frame_index], np.float32)[FACE_POINTS]
        seen = (f.pose[FACE_POINTS, 2] > 0) & (gt[:, 2] == 2)
        model = f.pose[FACE_POINTS, :2]
        if (box := person["face_boxes"][f.frame_index]) is not None:
            distance = np.linalg.norm(model[seen] - gt[seen, :2], axis=1)
            out["error"] += list(100 * distance / max(box[2], box[3]))
        if previous is not None and f.frame_index not in cuts:
            both = seen & previous[2]
            truth_motion = gt[:, :2] - previous[1]
            residual = np.linalg.norm((model - previous[0]) - truth_motion, axis=1)
            out["jitter"] += list(residual[both])
            still = both & (np.linalg.norm(truth_motion, axis=1) < AT_REST_PX)
            out["rest"] += list(residual[still])
        previous = (model, gt[:, :2], seen)
    return out


def run(per_timing: int, seed: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    from app.media.decode import iter_frames
    from app.media.drawing_match import DrawingFollower
    from app.pipeline.keypoints import extract_keypoints
    from app.pipeline.smoothing import smooth_faces
    from app.samples.generator import make_clip

    rng = np.random.default_rng(seed)
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for timing in TIMINGS:
            group = results.setdefault(timing, {name: {} for name in VARIANTS})
            for i in range(per_timing):
                clip = make_clip(
                    tmp, f"{timing}_{i}", seed=seed * 1000 + 10 * i + len(results),
                    width=int(rng.choice([384, 480])), fps=24, seconds=4.0, shots=1 + i % 2,
                    subsets=("face_video", "i2v"), kinds=("humanoid",), timing=timing,
                )  # fmt: skip
                cuts = [start for start, _ in clip.truth["shots"]]
                frames = list(iter_frames(clip.path))
                held = clip.truth["held_runs"]
                every = extract_keypoints(frames, held_runs=held, face_fallback=True)
                drawn = extract_keypoints(
                    frames, follower=DrawingFollower(), cuts=cuts, held_runs=held,
                    face_fallback=True,
                )  # fmt: skip
                smooth = smooth_faces(every, clip.truth["fps"], cuts)
                for name, extraction in (
                    ("per frame", every), ("smoothed", smooth), ("per drawing", drawn)
                ):  # fmt: skip
                    for key, values in face_measures(clip.truth, extraction.frames).items():
                        group[name].setdefault(key, []).extend(values)
    return results


def _means(group: dict[str, dict[str, list[float]]], key: str) -> str:
    return " / ".join(f"{np.mean(group[v][key]):.2f}" for v in VARIANTS)


def render(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    lines = [
        f"Generated face clips (close-ups and medium shots, 4 s at 24 fps, 1-2 shots), "
        f"load average {os.getloadavg()[0]:.1f} at the end. Jitter in px: mean frame-to-frame "
        "residual of a face point's motion against the truth point's motion (at rest: pairs "
        "where the truth point moved < 0.5 px). Error in % of the face box, median / 95th "
        "percentile. Per frame = the model on every frame but whole-frame repeats; smoothed = "
        "per frame, then a zero-phase One Euro filter (app.pipeline.smoothing.FACE_FILTER, one "
        "sample per drawing, each shot on its own): what the keypoints step writes on face "
        "clips; per drawing = held drawings found by the drawing follower carry their first "
        "frame's points by their move (what the step does on pose clips; on talking faces it "
        "carries mouths across changes, so face clips do not use it).",
        "",
        "| timing | face points | jitter: per frame / smoothed / per drawing | "
        "at rest | error: per frame / smoothed / per drawing |",
        "|---|---:|---:|---:|---:|",
    ]
    everything: dict[str, dict[str, list[float]]] = {name: {} for name in VARIANTS}
    for timing, group in [*results.items(), ("all", everything)]:
        if timing != "all":
            for name in VARIANTS:
                for key, values in group[name].items():
                    everything[name].setdefault(key, []).extend(values)
        if not group["smoothed"].get("error"):
            continue

        errors = " / ".join(
            f"{np.median(group[v]['error']):.2f} ({np.percentile(group[v]['error'], 95):.1f})"
            for v in VARIANTS
        )
        lines.append(
            f"| {timing} | {len(group['smoothed']['error'])} | {_means(group, 'jitter')} | "
            f"{_means(group, 'rest')} | {errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-timing", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    command = (
        f".venv/bin/python bench/face_smoothing.py --per-timing {args.per_timing} "
        f"--seed {args.seed}"
    )
    text = render(run(args.per_timing, args.seed))
    print(text)
    write_section(TITLE, text, command)


if __name__ == "__main__":
    main()
